"""The random numbers llama.cpp's sampler draws, so a seed means the same
thing here as in llama-cli or llama-cpp-python.

llama.cpp's ``dist`` sampler holds a ``std::mt19937`` seeded with the seed
and, for every token, draws ``std::uniform_real_distribution<double>(0, 1)``.
libstdc++ builds that double from two 32-bit outputs (generate_canonical
with 53 bits): (first + second * 2^32) / 2^64, rounded down below 1.
"""

from __future__ import annotations

import math

import numpy as np


class Mt19937Uniform:
    def __init__(self, seed: int):
        # numpy's legacy seeding of a 32-bit seed is MT19937's init_genrand,
        # which is what the std::mt19937(seed) constructor runs; std::mt19937
        # takes a 32-bit seed, so a larger one wraps the same way
        legacy = np.random.RandomState(seed & 0xFFFFFFFF)
        self._bits = np.random.MT19937()
        self._bits.state = {"bit_generator": "MT19937", "state": legacy.get_state(legacy=False)["state"]}

    def next_u32(self) -> int:
        return int(self._bits.random_raw())

    def uniform(self) -> float:
        """One std::uniform_real_distribution<double>(0, 1) draw, as libstdc++ makes it."""
        low = float(self.next_u32())
        total = low + float(self.next_u32()) * 4294967296.0  # one double rounding, as in C++
        value = total / 18446744073709551616.0
        return value if value < 1.0 else math.nextafter(1.0, 0.0)
