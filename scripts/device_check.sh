#!/usr/bin/env bash
# GPU check of poolrank on a machine with a real GPU (written for the "device" runner's
# nvidia-h100-x1: 16 cores, no network, no Rust toolchain, no Vulkan loader installed).
#
# Two steps:
#   scripts/device_check.sh prepare   here, in the repository root: builds the release binary and
#                                     the release parity-test binaries, strips and gzips them into
#                                     .devbin/, and downloads the Vulkan/EGL loader debs into .gl/
#                                     (both git-ignored through .git/info/exclude).
#   scripts/device_check.sh           there, with carry [".gl", ".devbin"]: unpacks the loaders,
#                                     then `poolrank devices`, the parity tests on the GPU
#                                     (tests gpu and backend_cli), `poolrank bench` on 10M
#                                     candidates on the GPU and on 1M on the CPU (for the ratio),
#                                     each as every posterior (--posterior) and as select's
#                                     search for the UCB top 1% (pruned on the CPU).
#                                     If cargo is there and .devbin/ is not, it builds with
#                                     `cargo --offline` instead.
#   scripts/device_check.sh sparse    there, likewise, but only the sparse fit: the example
#                                     sparse_fit on n = 10^6 synthetic fingerprints, m = 2000
#                                     inducing points, with the product K_mn K_nm on the GPU and
#                                     then on the CPU (16 cores), into sparse.txt (2 x 240 s at
#                                     most; give the runner timeout_s 540).
# Everything is written under "$OUT" (when set, else ./device-out): devices.txt, tests.txt,
# bench_gpu.txt, bench_gpu_select.txt, bench_cpu.txt, bench_cpu_select.txt, env.txt, log.txt.
# Each step has its own timeout; the whole run stays under about 7 minutes (20 + 150 + 120 +
# 60 + 40 + 30 s at most, plus unpacking). Give the
# runner timeout_s 540 or so, which leaves time for a rerun in a 15-minute device budget only
# if the first run is quick: run the prepare step and `bash -n` first.
set -uo pipefail

prepare() {
    set -e
    cargo build --release --bin poolrank --example sparse_fit
    # The test executables, as cargo names them.
    local tests
    tests=$(cargo test --release --no-run --test gpu --test backend_cli --message-format=json |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])')
    rm -rf .devbin && mkdir -p .devbin
    grep -qxF /.devbin/ .git/info/exclude || echo /.devbin/ >>.git/info/exclude
    strip -o .devbin/poolrank target/release/poolrank
    strip -o .devbin/sparse_fit target/release/examples/sparse_fit
    while read -r name exe; do
        strip -o ".devbin/$name" "$exe"
    done <<<"$tests"
    # The tests were compiled with these paths baked in (env! of CARGO_MANIFEST_DIR and
    # CARGO_BIN_EXE_poolrank); the device run recreates them.
    pwd >.devbin/manifest_dir
    gzip -9 .devbin/poolrank .devbin/gpu .devbin/backend_cli .devbin/sparse_fit
    # The Vulkan loader and friends, as /work/.library/device/README.md says.
    if [ ! -d .gl ] || ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
        grep -qxF /.gl/ .git/info/exclude || echo /.gl/ >>.git/info/exclude
        mkdir -p .gl /tmp/amd64/partial
        local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
        # shellcheck disable=SC2086
        apt-get $o update
        # shellcheck disable=SC2086
        (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    fi
    du -sh .devbin .gl
    echo "prepared; run on the device with carry [\".gl\", \".devbin\"]"
}

if [ "${1:-}" = prepare ]; then
    prepare
    exit
fi

OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
start=$SECONDS
step() { echo "== $* ($((SECONDS - start)) s)"; }
status=0

step "environment"
{
    uname -a
    nproc
    nvidia-smi 2>&1 || echo "no nvidia-smi"
} >"$OUT/env.txt" 2>&1

step "Vulkan loader"
if ! ldconfig -p | grep -q libvulkan; then
    if ls .gl/*.deb >/dev/null 2>&1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    else
        echo "no libvulkan and no .gl/*.deb: run 'scripts/device_check.sh prepare' here and carry .gl"
    fi
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then
    export VK_DRIVER_FILES=$nvidia_icd
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}" >>"$OUT/env.txt"

step "binaries"
if [ -f .devbin/poolrank.gz ]; then
    mkdir -p target/release
    gunzip -c .devbin/poolrank.gz >target/release/poolrank
    chmod +x target/release/poolrank
    for t in gpu backend_cli; do
        gunzip -c ".devbin/$t.gz" >"target/release/test-$t" && chmod +x "target/release/test-$t"
    done
    mkdir -p target/release/examples
    if [ -f .devbin/sparse_fit.gz ]; then
        gunzip -c .devbin/sparse_fit.gz >target/release/examples/sparse_fit
        chmod +x target/release/examples/sparse_fit
    fi
    # The test binaries look for the repository (data files) and for target/release/poolrank at
    # the paths of the machine that built them.
    built=$(cat .devbin/manifest_dir)
    if [ "$built" != "$PWD" ] && [ ! -e "$built" ]; then
        mkdir -p "$(dirname "$built")" && ln -s "$PWD" "$built"
    fi
    run_tests() {
        local rc=0
        for t in gpu backend_cli; do
            echo "-- test $t"
            "target/release/test-$t" || rc=1
        done
        return $rc
    }
elif command -v cargo >/dev/null; then
    timeout 300 cargo build --release --offline --bin poolrank || status=1
    run_tests() { cargo test --release --offline --test gpu --test backend_cli; }
    timeout 300 cargo build --release --offline --example sparse_fit || status=1
else
    echo "no .devbin/ and no cargo: run 'scripts/device_check.sh prepare' here and carry .devbin"
    exit 1
fi
BIN=target/release/poolrank

# The sparse fit (issue 9): n = 10^6 labels, m = 2000 inducing points, Tanimoto on 2048 bits,
# hyperparameters fitted by the bound; the product K_mn K_nm on the GPU, then on the CPU. Each
# prints one JSON line (fit_s, pass_s, product: where the product ran).
if [ "${1:-}" = sparse ]; then
    SPARSE=target/release/examples/sparse_fit
    step "sparse fit n = 10^6, m = 2000: product on the GPU"
    timeout 240 "$SPARSE" 1000000 2000 2048 gpu 2>&1 | tee "$OUT/sparse.txt" || status=1
    step "sparse fit n = 10^6, m = 2000: product on the CPU ($(nproc) cores)"
    timeout 240 "$SPARSE" 1000000 2000 2048 cpu 2>&1 | tee -a "$OUT/sparse.txt" || status=1
    step "done, status $status"
    exit $status
fi

step "poolrank devices"
timeout 20 "$BIN" devices 2>&1 | tee "$OUT/devices.txt" || status=1

# The parity suite on the real GPU: GpuOptions::software() takes the hardware adapter when there
# is one, and backend_cli's `--backend gpu` must now succeed.
step "parity tests (gpu, backend_cli)"
timeout 150 bash -c "$(declare -f run_tests); run_tests" >"$OUT/tests.txt" 2>&1 || status=1
grep -E "^test result|FAILED|panicked|GPU tests run on" "$OUT/tests.txt"

step "bench gpu: 10M candidates, 2000 labels, 2048 bits, every posterior"
timeout 120 "$BIN" bench --posterior --pool-size 10000000 --train 2000 --bits 2048 --backend gpu \
    2>&1 | tee "$OUT/bench_gpu.txt" || status=1

step "bench gpu: the same, select's search for the UCB top 1%"
timeout 60 "$BIN" bench --pool-size 10000000 --train 2000 --bits 2048 --backend gpu \
    2>&1 | tee "$OUT/bench_gpu_select.txt" || status=1

step "bench cpu: 1M candidates, same settings (for the ratio), every posterior then pruned"
timeout 40 "$BIN" bench --posterior --pool-size 1000000 --train 2000 --bits 2048 --backend cpu \
    2>&1 | tee "$OUT/bench_cpu.txt" || status=1
timeout 30 "$BIN" bench --pool-size 1000000 --train 2000 --bits 2048 --backend cpu \
    2>&1 | tee "$OUT/bench_cpu_select.txt" || status=1

step "done, status $status"
exit $status
