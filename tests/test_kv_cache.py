"""The KV cache: F32 or F16 storage, growth by doubling, its size."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from chord_core.errors import ChordError, ContextFullError
from chord_core.kv_cache import KVCache

# the cache reads only these fields of a ModelConfig
SHAPE = SimpleNamespace(n_layer=2, n_head_kv=3, head_dim_k=8, head_dim_v=4)


def test_f16_cache_rounds_stored_values_to_nearest_even():
    cache = KVCache(SHAPE, n_ctx=16, kv_type="f16")
    step = 2.0 ** -10  # float16 spacing in [1, 2)
    # exactly halfway between 1 and 1+step, and between 1+step and 1+2*step
    cache.k[0][0, 0, :2] = np.array([1 + step / 2, 1 + 1.5 * step], np.float32)
    assert cache.k[0].dtype == np.float16
    assert cache.k[0][0, 0, :2].astype(np.float32).tolist() == [1.0, 1 + 2 * step]


@pytest.mark.parametrize("kv_type, dtype", [("f32", np.float32), ("f16", np.float16)])
def test_growth_doubles_and_keeps_type_and_contents(kv_type, dtype):
    cache = KVCache(SHAPE, n_ctx=1000, initial=4, kv_type=kv_type)
    cache.k[1][:, :4] = 1.5
    cache.v[1][:, :4] = -2.5
    cache.tokens.extend(range(4))
    cache.reserve(9)
    assert cache.capacity == 16
    assert cache.k[1].dtype == dtype and cache.v[0].dtype == dtype
    assert (cache.k[1][:, :4] == 1.5).all() and (cache.v[1][:, :4] == -2.5).all()
    cache.reserve(1000)
    assert cache.capacity == 1000
    with pytest.raises(ContextFullError):
        cache.reserve(1001)


@pytest.mark.parametrize("kv_type", ["f32", "f16"])
def test_bytes_for_is_what_a_full_cache_takes(kv_type):
    cache = KVCache(SHAPE, n_ctx=300, initial=4, kv_type=kv_type)
    cache.reserve(300)
    assert KVCache.bytes_for(SHAPE, 300, kv_type) == cache.nbytes()
    assert KVCache.bytes_for(SHAPE, 300, "f16") * 2 == KVCache.bytes_for(SHAPE, 300, "f32")


def test_unknown_kv_type_is_a_one_line_error():
    with pytest.raises(ChordError, match="unknown KV cache type 'q8' \\(choose from f32, f16\\)"):
        KVCache(SHAPE, n_ctx=16, kv_type="q8")
    with pytest.raises(ChordError, match="'bf16'"):
        KVCache.bytes_for(SHAPE, 16, "bf16")


def test_truncate_forgets_positions_from_n():
    cache = KVCache(SHAPE, n_ctx=16, kv_type="f16")
    cache.tokens.extend([5, 6, 7, 8])
    cache.truncate(2)
    assert cache.tokens == [5, 6] and cache.n_past == 2
