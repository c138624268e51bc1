# Source on a lent GPU machine (python3 3.12 with CuPy, no network): the
# carried wheels (.whl, see the device README) and chord_core / chord_tui
# importable from this checkout without building anything.
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || return 1
mkdir -p /tmp/site/chord_core
cp -rsf "$PWD/core/." /tmp/site/chord_core/
ln -sfn "$PWD/templates" /tmp/site/chord_core/templates
ln -sfn "$PWD/chord_tui" /tmp/site/chord_tui
export PYTHONPATH=/tmp/site:$PWD/benchmarks PYTHONUNBUFFERED=1
