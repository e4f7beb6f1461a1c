#!/usr/bin/env python3
"""Reference outputs of the ORIGINAL int8 block-quantized models, computed by OpenCV.

ONNX Runtime cannot run the quantized OpenCV Zoo files, OpenCV can. This script runs them with
cv2.dnn on a fixed input and writes crates/frs-modelpack/reference/outputs.json, which
frs-modelpack checks the converted fp32 models against (see reference.rs there).

    python3 scripts/make_reference.py [--models assets/downloads/models]
        writes the reference JSON.
    python3 scripts/make_reference.py --compare-converted assets/models [--images assets/images]
        runs the converted models with onnxruntime (Python) and the originals with OpenCV on real
        photos and prints the largest differences; writes nothing.

Run with a python that lacks cv2, the script makes a throwaway venv under .cache/ with the pinned
packages below and re-runs itself there.

Input formula (must match frs_modelpack::reference::reference_input):
    x[i] = (i * 7919) % 256 over the flat NCHW index i, as float32.
"""

import argparse
import hashlib
import json
import os
import sys

from pinned_venv import reexec_in_venv

OPENCV = "opencv-python-headless==5.0.0.93"
NUMPY = "numpy==2.4.6"
ONNXRUNTIME = "onnxruntime==1.31.1"

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
VENV = os.path.join(ROOT, ".cache", "reference-venv")
OUT = os.path.join(ROOT, "crates", "frs-modelpack", "reference", "outputs.json")

YUNET = ("face_detection_yunet_2023mar_int8bq.onnx", "face_detection_yunet_2023mar", "input")
SFACE = ("face_recognition_sface_2021dec_int8bq.onnx", "face_recognition_sface_2021dec", "data")
SHA256 = {
    YUNET[0]: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    SFACE[0]: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
# (model, input shape). YuNet runs at any multiple of 32, non-square included.
CASES = [
    (YUNET, (1, 3, 640, 640)),
    (YUNET, (1, 3, 320, 320)),
    (YUNET, (1, 3, 256, 416)),
    (SFACE, (1, 3, 112, 112)),
]
SAMPLE_LEN = 16


def ensure_packages(need_onnxruntime):
    """Re-executes inside a venv with the pinned packages unless they are importable here."""

    def ready():
        try:
            import cv2  # noqa: F401
            import numpy  # noqa: F401

            if need_onnxruntime:
                import onnxruntime  # noqa: F401
            return True
        except ImportError:
            return False

    packages = [OPENCV, NUMPY] + ([ONNXRUNTIME] if need_onnxruntime else [])
    reexec_in_venv("make_reference.py", VENV, packages, ready)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def reference_input(shape):
    import numpy as np

    n = int(np.prod(shape))
    return ((np.arange(n, dtype=np.int64) * 7919) % 256).astype(np.float32).reshape(shape)


def summary(name, values):
    import numpy as np

    flat = values.astype(np.float32).ravel()
    v64 = flat.astype(np.float64)
    n = flat.size
    return {
        "name": name,
        "shape": [int(d) for d in values.shape],
        "first": [float(v) for v in flat[:SAMPLE_LEN]],
        "sample": [float(flat[k * n // SAMPLE_LEN]) for k in range(SAMPLE_LEN)] if n else [],
        "sum": float(v64.sum()),
        "l1": float(np.abs(v64).sum()),
        "l2": float(np.sqrt((v64 * v64).sum())),
        "max_abs": float(np.abs(v64).max()) if n else 0.0,
    }


def run_opencv(path, input_name, blob):
    import cv2

    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(blob, input_name)
    names = list(net.getUnconnectedOutLayersNames())
    return names, net.forward(names)


def verified(models, file):
    path = os.path.join(models, file)
    if not os.path.exists(path):
        sys.exit(f"make_reference.py: {path} is missing (run scripts/setup.sh)")
    if sha256(path) != SHA256[file]:
        sys.exit(f"make_reference.py: {path} does not have the expected SHA-256")
    return path


def make_reference(models):
    import cv2

    cases = []
    for (file, model, input_name), shape in CASES:
        path = verified(models, file)
        names, outs = run_opencv(path, input_name, reference_input(shape))
        cases.append(
            {
                "model": model,
                "source": file,
                "input_name": input_name,
                "input_shape": list(shape),
                "outputs": [summary(n, o) for n, o in zip(names, outs)],
            }
        )
        print(f"{model} {list(shape)}: {', '.join(f'{n}{list(o.shape)}' for n, o in zip(names, outs))}")
    doc = {
        "generator": "scripts/make_reference.py",
        "opencv": f"{OPENCV} (cv2 {cv2.__version__})",
        "input": "x[i] = (i * 7919) % 256 over the flat NCHW index i, as float32",
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)}")


def compare_converted(models, converted, images):
    """OpenCV on the originals vs onnxruntime on the converted files, on real photos."""
    import cv2
    import numpy as np
    import onnxruntime as ort

    yunet_q = verified(models, YUNET[0])
    sface_q = verified(models, SFACE[0])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    yunet = ort.InferenceSession(os.path.join(converted, YUNET[1] + ".onnx"), opts, providers=["CPUExecutionProvider"])
    sface = ort.InferenceSession(os.path.join(converted, SFACE[1] + ".onnx"), opts, providers=["CPUExecutionProvider"])
    recognizer = cv2.FaceRecognizerSF.create(sface_q, "")

    worst = {"yunet": 0.0, "yunet_rel": 0.0, "sface": 0.0, "batch": 0.0, "cosine": 1.0}
    per_output = {}
    files = sorted(f for f in os.listdir(images) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    if not files:
        sys.exit(f"make_reference.py: no images in {images}")
    for file in files:
        img = cv2.imread(os.path.join(images, file))
        for size in [(640, 640), (320, 320), (480, 640)]:
            resized = cv2.resize(img, (size[1], size[0]))
            blob = resized.transpose(2, 0, 1)[None].astype(np.float32)
            names, ref = run_opencv(yunet_q, YUNET[2], blob)
            got = yunet.run(names, {YUNET[2]: blob})
            for n, r, g in zip(names, ref, got):
                d = float(np.abs(r - g).max())
                per_output[n] = max(per_output.get(n, 0.0), d)
                worst["yunet"] = max(worst["yunet"], d)
                worst["yunet_rel"] = max(worst["yunet_rel"], d / max(float(np.abs(r).max()), 1e-30))
        h, w = img.shape[:2]
        detector = cv2.FaceDetectorYN.create(yunet_q, "", (w, h), 0.6, 0.3, 5000)
        _, faces = detector.detect(img)
        faces = [] if faces is None else faces
        crops = [recognizer.alignCrop(img, f) for f in faces]
        for crop in crops:
            blob = crop.transpose(2, 0, 1)[None].astype(np.float32)
            _, (ref,) = run_opencv(sface_q, SFACE[2], blob)
            (got,) = sface.run(None, {SFACE[2]: blob})
            worst["sface"] = max(worst["sface"], float(np.abs(ref - got).max()))
            cos = float((ref * got).sum() / (np.linalg.norm(ref) * np.linalg.norm(got)))
            worst["cosine"] = min(worst["cosine"], cos)
        if crops:
            batch = np.stack([c.transpose(2, 0, 1).astype(np.float32) for c in crops])
            (got_batch,) = sface.run(None, {SFACE[2]: batch})
            for i, crop in enumerate(crops):
                (single,) = sface.run(None, {SFACE[2]: batch[i : i + 1]})
                worst["batch"] = max(worst["batch"], float(np.abs(single[0] - got_batch[i]).max()))
        print(f"{file}: {img.shape[1]}x{img.shape[0]}, {len(crops)} face(s)")
    print("max |OpenCV(original) - ORT(converted)| per YuNet output: " + ", ".join(f"{n} {d:.2e}" for n, d in per_output.items()))
    print(
        "max |OpenCV(original) - ORT(converted)|: "
        f"YuNet {worst['yunet']:.3e} (relative to that output's max {worst['yunet_rel']:.3e}), "
        f"SFace {worst['sface']:.3e} (min feature cosine {worst['cosine']:.9f}), "
        f"SFace batched vs single {worst['batch']:.3e}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=os.path.join(ROOT, "assets", "downloads", "models"))
    parser.add_argument("--compare-converted", metavar="DIR", help="directory of the converted models")
    parser.add_argument("--images", default=os.path.join(ROOT, "assets", "images"))
    args = parser.parse_args()
    ensure_packages(need_onnxruntime=args.compare_converted is not None)
    if args.compare_converted:
        compare_converted(args.models, args.compare_converted, args.images)
    else:
        make_reference(args.models)


if __name__ == "__main__":
    main()
