#!/usr/bin/env python3
"""End-to-end check of frs with the official Huawei Cloud Python SDK (huaweicloudsdkfrs).

Builds an unmodified `FrsClient` pointed at an frs endpoint and calls every operation of the SDK
that frs serves, checking what the SDK parses out of each answer, then the error paths (parsed by
the SDK into `ClientRequestException`). With --auth (the server verifies AK/SK signatures) it also
checks that bad credentials, another project, a read-only key, tampered signed requests and bad
tokens are refused with the right code and change nothing.

    python3 tests/sdk/frs_sdk_e2e.py --endpoint http://127.0.0.1:8080 --project-id p --ak AK --sk SK
    python3 tests/sdk/frs_sdk_e2e.py --install-only     # only create the pinned venv

Pointing the SDK at frs: `FrsClient.new_builder().with_endpoints(["http://127.0.0.1:8080"])` takes a
plain-http endpoint as it is (the builder prefixes https:// only to a bare host), and with the project
id given to `BasicCredentials(ak, sk, project_id)` the SDK never calls IAM. Code written for a region,
`.with_region(FrsRegion.value_of("cn-north-4"))`, reaches frs unchanged when the SDK's own variable
HUAWEICLOUD_SDK_REGION_FRS_CN_NORTH_4=http://127.0.0.1:8080 is set (checked here too).

Every option also reads an environment variable (FRS_ENDPOINT, FRS_PROJECT_ID, FRS_AK, FRS_SK,
FRS_IMAGES, FRS_AUTH=1, FRS_OTHER_PROJECT_ID, FRS_OTHER_AK, FRS_OTHER_SK, FRS_READONLY_AK,
FRS_READONLY_SK); pass secrets that way rather than on the command line.

Run with a python that lacks the pinned SDK, the script creates .cache/sdk-venv with the packages
below (from PyPI) and re-runs itself there. Prints one line per operation; exits 1 on the first
mismatch, with the offending HTTP exchange.
"""

import argparse
import base64
import datetime
import json
import os
import re
import struct
import sys
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from pinned_venv import reexec_in_venv  # noqa: E402

VENV = os.path.join(ROOT, ".cache", "sdk-venv")
# The SDK and everything it pulls in, pinned exactly (huaweicloudsdkcore 3.1.219's requirements
# resolved on Python 3.11).
PINNED = {
    "huaweicloudsdkfrs": "3.1.219",
    "huaweicloudsdkcore": "3.1.219",
    "certifi": "2026.10.19.post1",
    "charset-normalizer": "3.5.2",
    "defusedxml": "0.7.1",
    "dnspython": "2.9.2",
    "idna": "3.20",
    "pyasn1": "0.6.3",
    "pymongo": "4.18.2",
    "PyYAML": "6.0.4",
    "requests": "2.34.2",
    "requests-toolbelt": "1.0.0",
    "simplejson": "4.3.0",
    "six": "1.17.0",
    "urllib3": "2.8.0",
}
NAME = "frs_sdk_e2e"
SAMPLES = 6
SIMILAR = 0.99  # a face against itself
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def pinned_sdk_ready():
    from importlib import metadata

    try:
        return all(metadata.version(name) == version for name, version in PINNED.items())
    except metadata.PackageNotFoundError:
        return False


def ensure_sdk():
    if sys.version_info < (3, 11):
        sys.exit(f"{NAME}: Python 3.11 or newer is required, this is {sys.version.split()[0]}")
    if not pinned_sdk_ready() and not os.path.exists(os.path.join(VENV, "bin", "python")):
        import importlib.util

        if importlib.util.find_spec("ensurepip") is None:
            sys.exit(f"{NAME}: {sys.executable} cannot create a venv (no ensurepip): "
                     "install Debian's python3-venv (apt-get install python3-venv)")
    reexec_in_venv(NAME, VENV, [f"{n}=={v}" for n, v in PINNED.items()], pinned_sdk_ready)


def parse_args():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--install-only", action="store_true", help="only create the pinned venv")
    p.add_argument("--endpoint", default=env("FRS_ENDPOINT"), help="e.g. http://127.0.0.1:8080")
    p.add_argument("--project-id", default=env("FRS_PROJECT_ID"))
    p.add_argument("--ak", default=env("FRS_AK"))
    p.add_argument("--sk", default=env("FRS_SK"))
    p.add_argument("--images", default=env("FRS_IMAGES", os.path.join(ROOT, "assets", "images")))
    p.add_argument("--auth", action="store_true", default=env("FRS_AUTH") == "1",
                   help="the server verifies signatures: also run the authentication cases")
    p.add_argument("--other-project-id", default=env("FRS_OTHER_PROJECT_ID"))
    p.add_argument("--other-ak", default=env("FRS_OTHER_AK"))
    p.add_argument("--other-sk", default=env("FRS_OTHER_SK"))
    p.add_argument("--readonly-ak", default=env("FRS_READONLY_AK"))
    p.add_argument("--readonly-sk", default=env("FRS_READONLY_SK"))
    args = p.parse_args()
    if args.install_only:
        return args
    missing = [o for o in ("endpoint", "project_id", "ak", "sk") if not getattr(args, o)]
    if args.auth:
        missing += [o for o in ("other_project_id", "other_ak", "other_sk", "readonly_ak", "readonly_sk")
                    if not getattr(args, o)]
    if missing:
        p.error("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
    return args


# ---------------------------------------------------------------------------------------------
# Reporting


class Mismatch(Exception):
    pass


class Exchanges:
    """The HTTP exchanges the SDK made (an SDK response handler), to show the one that failed."""

    def __init__(self):
        self.last = None

    def record(self, **kwargs):
        self.last = kwargs.get("response")


EXCHANGES = Exchanges()


def redact(headers):
    return {k: ("<redacted>" if k.lower() in ("authorization", "x-auth-token") else v) for k, v in headers.items()}


def describe(response):
    if response is None:
        return "  (no HTTP exchange recorded)"
    req = response.request
    body = req.body
    if isinstance(body, bytes):
        body = body[:600].decode("utf-8", "replace")
    elif body is not None and not isinstance(body, str):
        body = f"<{type(body).__name__}>"
    return (
        f"  request:  {req.method} {req.url}\n"
        f"            headers {redact(dict(req.headers))}\n"
        f"            body {body[:600] if body else body!r}\n"
        f"  response: {response.status_code} headers {dict(response.headers)}\n"
        f"            body {response.text[:1500]}"
    )


def ok(operation, detail):
    print(f"ok    {operation:<36} {detail}", flush=True)


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")


def check_sdk_response(response, what):
    check_eq(response.status_code, 200, f"{what}: HTTP status")
    check(REQUEST_ID.match(response.x_request_id or ""),
          f"{what}: X-Request-Id parsed as {response.x_request_id!r}, expected 32 hex digits")


def run(operation, call, describe_result):
    """Calls the SDK, checks the status and request id and prints `describe_result(response)`."""
    from huaweicloudsdkcore.exceptions.exceptions import SdkException

    EXCHANGES.last = None
    try:
        response = call()
    except SdkException as e:
        raise Mismatch(f"{operation}: the SDK raised {e}")
    check_sdk_response(response, operation)
    try:
        detail = describe_result(response)
    except (AttributeError, IndexError, KeyError, TypeError) as e:
        raise Mismatch(f"{operation}: unexpected response {response}: {e!r}")
    ok(operation, detail)
    return response


def run_error(operation, call, status, code, message=None):
    """Calls the SDK expecting a ClientRequestException with this status and error code."""
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, SdkException

    EXCHANGES.last = None
    try:
        response = call()
    except ClientRequestException as e:
        check_eq((e.status_code, e.error_code), (status, code), f"{operation}: (status_code, error_code)")
        check(isinstance(e.error_msg, str) and e.error_msg.strip(), f"{operation}: empty error_msg {e.error_msg!r}")
        if message is not None:
            check(message in e.error_msg, f"{operation}: error_msg {e.error_msg!r} lacks {message!r}")
        check(REQUEST_ID.match(e.request_id or ""),
              f"{operation}: request_id parsed as {e.request_id!r}, expected 32 hex digits")
        ok(operation, f"{e.status_code} {e.error_code} {e.error_msg!r}")
        return e
    except SdkException as e:
        raise Mismatch(f"{operation}: expected ClientRequestException {status} {code}, the SDK raised {e!r}: {e}")
    raise Mismatch(f"{operation}: expected ClientRequestException {status} {code}, got a response: {response}")


# ---------------------------------------------------------------------------------------------
# Inputs


def load_samples(images):
    paths = [os.path.join(images, f"sample{i}.jpg") for i in range(1, SAMPLES + 1)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        sys.exit(f"{NAME}: {', '.join(missing)} missing: run scripts/setup.sh")
    return paths


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


def faceless_bmp(path, width=320, height=240):
    """A 24-bit BMP of a smooth colour gradient: a valid image without any face."""
    row = bytearray()
    for x in range(width):
        row += bytes((x * 255 // width, 128, 255 - x * 255 // width))
    row += b"\0" * ((4 - len(row) % 4) % 4)
    pixels = bytearray()
    for y in range(height):
        shade = y * 64 // height
        pixels += bytes(min(255, b + shade) for b in row)
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + pixels)
    return path


def box(b):
    return (b.top_left_x, b.top_left_y, b.width, b.height)


def check_box(b, what):
    check(b is not None, f"{what}: no bounding_box")
    for name in ("top_left_x", "top_left_y", "width", "height"):
        value = getattr(b, name)
        check(isinstance(value, int) and value >= 0, f"{what}: bounding_box.{name} = {value!r}")
    check(b.width > 0 and b.height > 0, f"{what}: empty bounding_box {box(b)}")


# ---------------------------------------------------------------------------------------------
# The SDK client


def new_client(endpoint, ak, sk, project_id):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkcore.http.http_handler import HttpHandler
    from huaweicloudsdkfrs.v2 import FrsClient

    config = HttpConfig.get_default_config()
    config.timeout = (10, 60)
    return (
        FrsClient.new_builder()
        # The project id given explicitly: the SDK never asks IAM for it.
        .with_credentials(BasicCredentials(ak, sk, project_id))
        # A plain http:// endpoint is taken as it is (the builder only prefixes https:// to a bare host).
        .with_endpoints([endpoint])
        .with_http_config(config)
        .with_http_handler(HttpHandler().add_response_handler(EXCHANGES.record))
        .build()
    )


# ---------------------------------------------------------------------------------------------
# The operations


class State:
    """What the run created: the face set and its faces."""

    def __init__(self):
        self.set_name = f"sdk-e2e-{uuid.uuid4().hex[:8]}"
        self.faces = {}  # face_id -> dict(external_image_id, external_fields, box)
        self.order = []  # face ids in insertion order
        self.by_image = {}  # external_image_id at add -> [face_id]


SCHEMA = {
    "dept": "integer",
    "ts": "long",
    "vip": "boolean",
    "score": "double",
    "weight": "float",
    "name": "string",
}


def detect_and_compare(c, samples):
    from huaweicloudsdkcore.http.formdata import FormFile
    from huaweicloudsdkfrs.v2 import model as m

    s1 = samples[0]
    detected = {}

    def faces_of(r, what):
        check(isinstance(r.faces, list) and r.faces, f"{what}: no faces parsed")
        for i, f in enumerate(r.faces):
            check_box(f.bounding_box, f"{what}: faces[{i}]")
        areas = [f.bounding_box.width * f.bounding_box.height for f in r.faces]
        check(areas == sorted(areas, reverse=True), f"{what}: faces not largest first: {areas}")
        return [box(f.bounding_box) for f in r.faces]

    r = run("DetectFaceByBase64", lambda: c.detect_face_by_base64(m.DetectFaceByBase64Request(
        body=m.FaceDetectBase64Req(image_base64=b64(s1)))),
        lambda r: f"sample1.jpg: {len(r.faces)} faces, largest {box(r.faces[0].bounding_box)}")
    detected["base64"] = faces_of(r, "DetectFaceByBase64")
    check(len(detected["base64"]) >= 2, "DetectFaceByBase64: sample1.jpg should show several faces")
    check(all(f.attributes is None for f in r.faces), "DetectFaceByBase64: attributes without asking")

    # Attribute codes frs does not compute are accepted and left out of the answer.
    r = run("DetectFaceByBase64 (attributes)", lambda: c.detect_face_by_base64(m.DetectFaceByBase64Request(
        enterprise_project_id="0", body=m.FaceDetectBase64Req(image_base64=b64(s1), attributes="1,2,4,12,13,21"))),
        lambda r: f"{len(r.faces)} faces, attributes {r.faces[0].attributes}")
    check_eq(faces_of(r, "DetectFaceByBase64 (attributes)"), detected["base64"], "boxes with attributes")

    r = run("DetectFaceByBase64Intl", lambda: c.detect_face_by_base64_intl(m.DetectFaceByBase64IntlRequest(
        body=m.FaceDetectBase64Req(image_base64=b64(s1), attributes="3"))),
        lambda r: f"{len(r.faces)} faces")
    check_eq(faces_of(r, "DetectFaceByBase64Intl"), detected["base64"], "DetectFaceByBase64Intl boxes")

    r = run("DetectFaceByFile", lambda: c.detect_face_by_file(m.DetectFaceByFileRequest(
        body=m.DetectFaceByFileRequestBody(image_file=FormFile(s1), attributes="2"))),
        lambda r: f"{len(r.faces)} faces, largest {box(r.faces[0].bounding_box)}")
    check_eq(faces_of(r, "DetectFaceByFile"), detected["base64"], "DetectFaceByFile boxes (same image as base64)")

    r = run("DetectFaceByFileIntl", lambda: c.detect_face_by_file_intl(m.DetectFaceByFileIntlRequest(
        body=m.DetectFaceByFileIntlRequestBody(image_file=FormFile(s1)))),
        lambda r: f"{len(r.faces)} faces")
    check_eq(faces_of(r, "DetectFaceByFileIntl"), detected["base64"], "DetectFaceByFileIntl boxes")

    largest = detected["base64"][0]

    def compared(r, what, same):
        check_box(r.image1_face.bounding_box, f"{what}: image1_face")
        check_box(r.image2_face.bounding_box, f"{what}: image2_face")
        check(isinstance(r.similarity, float) and 0.0 <= r.similarity <= 1.0, f"{what}: similarity {r.similarity!r}")
        check_eq(box(r.image1_face.bounding_box), largest, f"{what}: image1_face is the largest face of sample1")
        if same:
            check_eq(box(r.image2_face.bounding_box), largest, f"{what}: image2_face")
            check(r.similarity > SIMILAR, f"{what}: an image against itself scored {r.similarity}")
        else:
            check(r.similarity < 0.93, f"{what}: two different people scored {r.similarity}")

    r = run("CompareFaceByBase64", lambda: c.compare_face_by_base64(m.CompareFaceByBase64Request(
        body=m.FaceCompareBase64Req(image1_base64=b64(s1), image2_base64=b64(s1)))),
        lambda r: f"sample1 vs sample1: similarity {r.similarity:.4f}")
    compared(r, "CompareFaceByBase64", same=True)
    r = run("CompareFaceByBase64 (other image)", lambda: c.compare_face_by_base64(m.CompareFaceByBase64Request(
        body=m.FaceCompareBase64Req(image1_base64=b64(s1), image2_base64=b64(samples[4])))),
        lambda r: f"sample1 vs sample5: similarity {r.similarity:.4f}")
    compared(r, "CompareFaceByBase64 (other image)", same=False)
    r = run("CompareFaceByFile", lambda: c.compare_face_by_file(m.CompareFaceByFileRequest(
        body=m.CompareFaceByFileRequestBody(image1_file=FormFile(s1), image2_file=FormFile(s1)))),
        lambda r: f"sample1 vs sample1: similarity {r.similarity:.4f}")
    compared(r, "CompareFaceByFile", same=True)
    return detected["base64"]


def region_client(args):
    """Code written for a Huawei region, unchanged: `with_region(FrsRegion.value_of("cn-north-4"))`, sent to
    frs by the SDK's own override variable HUAWEICLOUD_SDK_REGION_FRS_CN_NORTH_4."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkfrs.v2 import FrsClient, model as m
    from huaweicloudsdkfrs.v2.region.frs_region import FrsRegion

    os.environ["HUAWEICLOUD_SDK_REGION_FRS_CN_NORTH_4"] = args.endpoint
    region = FrsRegion.value_of("cn-north-4")
    check_eq(region.endpoints, [args.endpoint], "FrsRegion cn-north-4 endpoints with the override")
    c = FrsClient.new_builder().with_credentials(BasicCredentials(args.ak, args.sk, args.project_id)) \
        .with_region(region).build()
    run("ShowAllFaceSets (region override)", lambda: c.show_all_face_sets(m.ShowAllFaceSetsRequest()),
        lambda r: f"cn-north-4 -> {args.endpoint}: {len(r.face_sets_info)} sets")


def create_and_show_sets(c, st):
    from huaweicloudsdkfrs.v2 import model as m

    schema = {k: m.TypeInfo(type=v) for k, v in SCHEMA.items()}
    r = run("CreateFaceSet", lambda: c.create_face_set(m.CreateFaceSetRequest(
        body=m.CreateFaceSetReq(face_set_name=st.set_name, face_set_capacity=10000, external_fields=schema))),
        lambda r: f"{r.face_set_info.face_set_name} id {r.face_set_info.face_set_id}")
    info = r.face_set_info
    check_eq(info.face_set_name, st.set_name, "CreateFaceSet face_set_name")
    check(isinstance(info.face_set_id, str) and len(info.face_set_id) == 8, f"face_set_id {info.face_set_id!r}")
    check_eq(info.face_set_capacity, 10000, "CreateFaceSet face_set_capacity")
    check_eq(info.face_number, 0, "CreateFaceSet face_number")
    check_eq(info.external_fields, {k: {"type": v} for k, v in SCHEMA.items()}, "CreateFaceSet external_fields")
    check(isinstance(info.create_date, str) and info.create_date, f"create_date {info.create_date!r}")
    st.set_id = info.face_set_id
    st.info = info

    run_error("CreateFaceSet (exists)", lambda: c.create_face_set(m.CreateFaceSetRequest(
        body=m.CreateFaceSetReq(face_set_name=st.set_name))), 400, "FRS.0301")

    r = run("ShowAllFaceSets", lambda: c.show_all_face_sets(m.ShowAllFaceSetsRequest()),
            lambda r: f"{len(r.face_sets_info)} sets")
    mine = [s for s in r.face_sets_info if s.face_set_name == st.set_name]
    check_eq(len(mine), 1, f"ShowAllFaceSets lists {st.set_name}")
    check_eq(mine[0].to_dict(), info.to_dict(), "ShowAllFaceSets entry")

    r = run("ShowFaceSet", lambda: c.show_face_set(m.ShowFaceSetRequest(face_set_name=st.set_name)),
            lambda r: f"face_number {r.face_set_info.face_number}, created {r.face_set_info.create_date}")
    check_eq(r.face_set_info.to_dict(), info.to_dict(), "ShowFaceSet face_set_info")


def face_number(c, st):
    from huaweicloudsdkfrs.v2 import model as m

    EXCHANGES.last = None
    return c.show_face_set(m.ShowFaceSetRequest(face_set_name=st.set_name)).face_set_info.face_number


def add_faces(c, st, samples, detected1):
    from huaweicloudsdkcore.http.formdata import FormFile
    from huaweicloudsdkfrs.v2 import model as m

    def added(r, what, image_id, fields, count, boxes=None):
        check_eq(r.face_set_name, st.set_name, f"{what}: face_set_name")
        check_eq(r.face_set_id, st.set_id, f"{what}: face_set_id")
        check_eq(len(r.faces), count, f"{what}: faces added")
        ids = []
        for i, f in enumerate(r.faces):
            check_box(f.bounding_box, f"{what}: faces[{i}]")
            check(isinstance(f.face_id, str) and f.face_id and f.face_id not in st.faces,
                  f"{what}: face_id {f.face_id!r}")
            if image_id is None:
                check(isinstance(f.external_image_id, str) and f.external_image_id,
                      f"{what}: generated external_image_id {f.external_image_id!r}")
            else:
                check_eq(f.external_image_id, image_id, f"{what}: external_image_id")
            check_eq(f.external_fields, fields, f"{what}: external_fields")
            st.faces[f.face_id] = {"external_image_id": f.external_image_id, "external_fields": dict(fields),
                                   "box": box(f.bounding_box)}
            st.order.append(f.face_id)
            ids.append(f.face_id)
        if boxes is not None:
            check_eq([box(f.bounding_box) for f in r.faces], boxes, f"{what}: boxes (as face-detect)")
        st.by_image[r.faces[0].external_image_id] = ids
        return ids

    f1 = {"dept": 1, "ts": 1000, "vip": True, "score": 0.5, "weight": 1.25, "name": "alice"}
    r = run("AddFacesByBase64", lambda: c.add_faces_by_base64(m.AddFacesByBase64Request(
        face_set_name=st.set_name, body=m.AddFacesBase64Req(image_base64=b64(samples[0]), external_image_id="img1",
                                                            external_fields=f1))),
        lambda r: f"sample1.jpg (every face): {len(r.faces)} faces {[f.face_id for f in r.faces]}")
    st.img1 = added(r, "AddFacesByBase64", "img1", f1, len(detected1), boxes=detected1)

    f2 = {"dept": 2, "ts": 2000, "vip": False, "score": 1.5, "weight": 2.5, "name": "bob"}
    r = run("AddFacesByBase64 (single)", lambda: c.add_faces_by_base64(m.AddFacesByBase64Request(
        face_set_name=st.set_name, body=m.AddFacesBase64Req(image_base64=b64(samples[1]), external_image_id="img2",
                                                            external_fields=f2, single=True))),
        lambda r: f"sample2.jpg: {len(r.faces)} face {r.faces[0].face_id}")
    st.img2 = added(r, "AddFacesByBase64 (single)", "img2", f2, 1)

    f3 = {"dept": 1, "ts": 3000, "vip": False, "score": 2.5, "weight": 0.75, "name": "carol"}
    r = run("AddFacesByFile (single)", lambda: c.add_faces_by_file(m.AddFacesByFileRequest(
        face_set_name=st.set_name, body=m.AddFacesByFileRequestBody(
            image_file=FormFile(samples[2]), external_image_id="img3", external_fields=json.dumps(f3), single=True))),
        lambda r: f"sample3.jpg: {len(r.faces)} face {r.faces[0].face_id}")
    st.img3 = added(r, "AddFacesByFile (single)", "img3", f3, 1)

    f4 = {"dept": 3, "ts": 4000, "vip": True, "score": 3.5, "weight": 4.5, "name": "dave"}
    r = run("AddFacesByFile", lambda: c.add_faces_by_file(m.AddFacesByFileRequest(
        face_set_name=st.set_name, body=m.AddFacesByFileRequestBody(
            image_file=FormFile(samples[3]), external_image_id="img4", external_fields=json.dumps(f4), single=False))),
        lambda r: f"sample4.jpg (every face): {len(r.faces)} faces")
    st.img4 = added(r, "AddFacesByFile", "img4", f4, 4)

    r = run("AddFacesByBase64 (no ids)", lambda: c.add_faces_by_base64(m.AddFacesByBase64Request(
        face_set_name=st.set_name, body=m.AddFacesBase64Req(image_base64=b64(samples[4]), single=True))),
        lambda r: f"sample5.jpg: external_image_id generated: {r.faces[0].external_image_id}")
    st.img5 = added(r, "AddFacesByBase64 (no ids)", None, {}, 1)


def show_and_update(c, st):
    from huaweicloudsdkfrs.v2 import model as m

    def listed(r, what):
        check_eq((r.face_set_name, r.face_set_id), (st.set_name, st.set_id), f"{what}: set")
        for f in r.faces:
            check(f.face_id in st.faces, f"{what}: unknown face {f.face_id}")
            want = st.faces[f.face_id]
            check_eq((f.external_image_id, f.external_fields, box(f.bounding_box)),
                     (want["external_image_id"], want["external_fields"], want["box"]), f"{what}: face {f.face_id}")
        return [f.face_id for f in r.faces]

    r = run("ShowFaceSet (after adds)", lambda: c.show_face_set(m.ShowFaceSetRequest(face_set_name=st.set_name)),
            lambda r: f"face_number {r.face_set_info.face_number}")
    check_eq(r.face_set_info.face_number, len(st.order), "face_number after the adds")

    r = run("ShowFacesByLimit", lambda: c.show_faces_by_limit(m.ShowFacesByLimitRequest(
        face_set_name=st.set_name, offset=0, limit=100)), lambda r: f"offset 0 limit 100: {len(r.faces)} faces")
    check_eq(listed(r, "ShowFacesByLimit"), st.order, "ShowFacesByLimit: every face, in insertion order")
    r = run("ShowFacesByLimit (page)", lambda: c.show_faces_by_limit(m.ShowFacesByLimitRequest(
        face_set_name=st.set_name, offset=3, limit=2)), lambda r: f"offset 3 limit 2: {[f.face_id for f in r.faces]}")
    check_eq(listed(r, "ShowFacesByLimit (page)"), st.order[3:5], "ShowFacesByLimit offset 3 limit 2")

    target = st.img2[0]
    r = run("ShowFacesByFaceId", lambda: c.show_faces_by_face_id(m.ShowFacesByFaceIdRequest(
        face_set_name=st.set_name, face_id=target)), lambda r: f"{target}: {r.faces[0].external_fields}")
    check_eq(listed(r, "ShowFacesByFaceId"), [target], "ShowFacesByFaceId")

    run_error("ShowFacesByFaceId (unknown)", lambda: c.show_faces_by_face_id(m.ShowFacesByFaceIdRequest(
        face_set_name=st.set_name, face_id="NoSuchId")), 400, "FRS.0403")

    r = run("UpdateFace", lambda: c.update_face(m.UpdateFaceRequest(face_set_name=st.set_name, body=m.UpdateFaceReq(
        face_id=target, external_image_id="img2b", external_fields={"name": "bobby", "dept": 5}))),
        lambda r: f"{target}: face_number {r.face_number}")
    check_eq((r.face_number, r.face_set_name, r.face_set_id), (1, st.set_name, st.set_id), "UpdateFace response")
    st.faces[target]["external_image_id"] = "img2b"
    st.faces[target]["external_fields"].update({"name": "bobby", "dept": 5})
    r = run("ShowFacesByFaceId (updated)", lambda: c.show_faces_by_face_id(m.ShowFacesByFaceIdRequest(
        face_set_name=st.set_name, face_id=target)),
        lambda r: f"{r.faces[0].external_image_id} {r.faces[0].external_fields}")
    listed(r, "ShowFacesByFaceId (updated)")


def search(c, st, samples):
    from huaweicloudsdkcore.http.formdata import FormFile
    from huaweicloudsdkfrs.v2 import model as m

    def results(r, what, top_n, threshold=0.0, fields=None, sorted_by_similarity=True):
        check(isinstance(r.faces, list), f"{what}: no faces list")
        check(len(r.faces) <= top_n, f"{what}: {len(r.faces)} results for top_n {top_n}")
        for f in r.faces:
            check(f.face_id in st.faces, f"{what}: unknown face {f.face_id}")
            want = st.faces[f.face_id]
            check(isinstance(f.similarity, float) and threshold <= f.similarity <= 1.0,
                  f"{what}: similarity {f.similarity!r} (threshold {threshold})")
            check_eq((f.external_image_id, box(f.bounding_box)), (want["external_image_id"], want["box"]),
                     f"{what}: {f.face_id}")
            expected_fields = want["external_fields"] if fields is None else \
                {k: v for k, v in want["external_fields"].items() if k in fields}
            check_eq(f.external_fields, expected_fields, f"{what}: {f.face_id} external_fields")
        sims = [f.similarity for f in r.faces]
        if sorted_by_similarity:
            check(sims == sorted(sims, reverse=True), f"{what}: not by descending similarity: {sims}")
        return [f.face_id for f in r.faces]

    largest1 = st.img1[0]
    img5_id = st.faces[st.img5[0]]["external_image_id"]
    r = run("SearchFaceByBase64", lambda: c.search_face_by_base64(m.SearchFaceByBase64Request(
        face_set_name=st.set_name, body=m.FaceSearchBase64Req(image_base64=b64(samples[0]), top_n=3))),
        lambda r: f"sample1.jpg top_n 3: {[(f.face_id, round(f.similarity, 4)) for f in r.faces]}")
    ids = results(r, "SearchFaceByBase64", 3)
    check_eq(len(ids), 3, "SearchFaceByBase64 result count")
    check(ids[0] == largest1 and r.faces[0].similarity > SIMILAR,
          f"SearchFaceByBase64: best match {ids[0]} ({r.faces[0].similarity}), expected {largest1}")

    r = run("SearchFaceByBase64 (threshold)", lambda: c.search_face_by_base64(m.SearchFaceByBase64Request(
        face_set_name=st.set_name, body=m.FaceSearchBase64Req(image_base64=b64(samples[0]), top_n=10,
                                                              threshold=0.93))),
        lambda r: f"threshold 0.93: {[f.face_id for f in r.faces]}")
    check_eq(results(r, "SearchFaceByBase64 (threshold)", 10, 0.93), [largest1], "threshold 0.93 keeps only the face")

    r = run("SearchFaceByBase64 (filter, fields)", lambda: c.search_face_by_base64(m.SearchFaceByBase64Request(
        face_set_name=st.set_name, body=m.FaceSearchBase64Req(
            image_base64=b64(samples[0]), top_n=20, filter="dept:[2 TO 5] || external_image_id:img3",
            return_fields=["name", "dept"]))),
        lambda r: f"filter dept:[2 TO 5] || img3: {len(r.faces)} faces, fields {r.faces[0].external_fields}")
    ids = results(r, "SearchFaceByBase64 (filter, fields)", 20, fields=["name", "dept"])
    expected = {i for i, f in st.faces.items()
                if 2 <= f["external_fields"].get("dept", 0) <= 5 or f["external_image_id"] == "img3"}
    check_eq(set(ids), expected, "filter dept:[2 TO 5] || external_image_id:img3 selects")

    r = run("SearchFaceByBase64 (sort)", lambda: c.search_face_by_base64(m.SearchFaceByBase64Request(
        face_set_name=st.set_name, body=m.FaceSearchBase64Req(
            image_base64=b64(samples[0]), top_n=20, filter=f"(!external_image_id:{img5_id})",
            sort=[{"ts": "desc"}, {"score": "asc"}], return_fields=["ts", "score"]))),
        lambda r: f"sort ts desc: {[f.external_fields['ts'] for f in r.faces]}")
    results(r, "SearchFaceByBase64 (sort)", 20, fields=["ts", "score"], sorted_by_similarity=False)
    keys = [(-f.external_fields["ts"], f.external_fields["score"]) for f in r.faces]
    check(keys == sorted(keys), f"SearchFaceByBase64 (sort): not by ts desc, score asc: {keys}")
    check_eq(len(r.faces), len(st.order) - 1, "SearchFaceByBase64 (sort): every face but img5's")

    probe = st.img3[0]
    r = run("SearchFaceByFile", lambda: c.search_face_by_file(m.SearchFaceByFileRequest(
        face_set_name=st.set_name, body=m.SearchFaceByFileRequestBody(
            image_file=FormFile(samples[2]), top_n=5, threshold=0.5, filter="vip:false",
            sort=json.dumps([{"weight": "asc"}]), return_fields=json.dumps(["name", "weight"])))),
        lambda r: f"sample3.jpg vip:false sort weight: {[(f.face_id, f.external_fields) for f in r.faces]}")
    ids = results(r, "SearchFaceByFile", 5, 0.5, fields=["name", "weight"], sorted_by_similarity=False)
    check(probe in ids, f"SearchFaceByFile: {probe} (sample3's face) not found: {ids}")
    check(all(st.faces[i]["external_fields"].get("vip") is False for i in ids), "SearchFaceByFile: vip:false filter")
    weights = [f.external_fields["weight"] for f in r.faces]
    check_eq(weights, sorted(weights), "SearchFaceByFile: sorted by weight asc")
    r = run("SearchFaceByFile (plain)", lambda: c.search_face_by_file(m.SearchFaceByFileRequest(
        face_set_name=st.set_name, body=m.SearchFaceByFileRequestBody(image_file=FormFile(samples[2])))),
        lambda r: f"sample3.jpg: best {r.faces[0].face_id} {r.faces[0].similarity:.4f}")
    ids = results(r, "SearchFaceByFile (plain)", 10)
    check(ids[0] == probe and r.faces[0].similarity > SIMILAR, f"SearchFaceByFile: best {ids[0]}, expected {probe}")
    check_eq(len(ids), min(10, len(st.order)), "SearchFaceByFile: top_n defaults to 10")

    probe = st.img4[1]
    r = run("SearchFaceByFaceId", lambda: c.search_face_by_face_id(m.SearchFaceByFaceIdRequest(
        face_set_name=st.set_name, body=m.FaceSearchFaceIdReq(face_id=probe, top_n=2, threshold=0.1,
                                                              return_fields=["name"]))),
        lambda r: f"{probe} top_n 2: {[(f.face_id, round(f.similarity, 4)) for f in r.faces]}")
    ids = results(r, "SearchFaceByFaceId", 2, 0.1, fields=["name"])
    check(ids[0] == probe and r.faces[0].similarity > SIMILAR, f"SearchFaceByFaceId: best {ids}, expected {probe}")
    r = run("SearchFaceByFaceId (filter)", lambda: c.search_face_by_face_id(m.SearchFaceByFaceIdRequest(
        face_set_name=st.set_name, body=m.FaceSearchFaceIdReq(face_id=probe, filter="dept:3 && (!vip:false)",
                                                              sort=[{"dept": "desc"}]))),
        lambda r: f"{probe} filter dept:3: {len(r.faces)} faces")
    check_eq(set(results(r, "SearchFaceByFaceId (filter)", 10, sorted_by_similarity=False)), set(st.img4),
             "SearchFaceByFaceId filter dept:3 selects sample4's faces")

    run_error("SearchFaceByBase64 (bad filter)", lambda: c.search_face_by_base64(m.SearchFaceByBase64Request(
        face_set_name=st.set_name, body=m.FaceSearchBase64Req(image_base64=b64(samples[0]), filter="dept:[1 TO"))),
        400, "FRS.0029")
    run_error("SearchFaceByFaceId (unknown field)", lambda: c.search_face_by_face_id(m.SearchFaceByFaceIdRequest(
        face_set_name=st.set_name, body=m.FaceSearchFaceIdReq(face_id=probe, return_fields=["nosuch"]))),
        400, "FRS.0030")
    run_error("SearchFaceByFaceId (sort on a string)", lambda: c.search_face_by_face_id(m.SearchFaceByFaceIdRequest(
        face_set_name=st.set_name, body=m.FaceSearchFaceIdReq(face_id=probe, sort=[{"name": "asc"}]))),
        400, "FRS.0032")
    run_error("SearchFaceByFaceId (unknown face)", lambda: c.search_face_by_face_id(m.SearchFaceByFaceIdRequest(
        face_set_name=st.set_name, body=m.FaceSearchFaceIdReq(face_id="NoSuchId"))), 400, "FRS.0403")


def refused_inputs(c, st, samples, faceless):
    """URL inputs, a missing set, an image without a face, operations frs does not serve: refused, nothing added."""
    from huaweicloudsdkcore.http.formdata import FormFile
    from huaweicloudsdkfrs.v2 import model as m

    before = face_number(c, st)
    url = "file:///etc/passwd"
    run_error("DetectFaceByUrl", lambda: c.detect_face_by_url(m.DetectFaceByUrlRequest(
        body=m.FaceDetectUrlReq(image_url=url))), 400, "FRS.0021")
    run_error("DetectFaceByUrlIntl", lambda: c.detect_face_by_url_intl(m.DetectFaceByUrlIntlRequest(
        body=m.FaceDetectUrlReq(image_url=url, attributes="2"))), 400, "FRS.0021")
    run_error("CompareFaceByUrl", lambda: c.compare_face_by_url(m.CompareFaceByUrlRequest(
        body=m.FaceCompareUrlReq(image1_url=url, image2_url=url))), 400, "FRS.0021")
    run_error("AddFacesByUrl", lambda: c.add_faces_by_url(m.AddFacesByUrlRequest(
        face_set_name=st.set_name, body=m.AddFacesUrlReq(image_url=url, external_image_id="url", single=True))),
        400, "FRS.0021")
    run_error("SearchFaceByUrl", lambda: c.search_face_by_url(m.SearchFaceByUrlRequest(
        face_set_name=st.set_name, body=m.FaceSearchUrlReq(image_url=url, top_n=3))), 400, "FRS.0021")

    missing = "no-such-set"
    run_error("SearchFaceByBase64 (missing set)", lambda: c.search_face_by_base64(m.SearchFaceByBase64Request(
        face_set_name=missing, body=m.FaceSearchBase64Req(image_base64=b64(samples[0])))), 400, "FRS.0302")
    run_error("AddFacesByBase64 (missing set)", lambda: c.add_faces_by_base64(m.AddFacesByBase64Request(
        face_set_name=missing, body=m.AddFacesBase64Req(image_base64=b64(samples[0])))), 400, "FRS.0302")
    run_error("ShowFaceSet (missing set)", lambda: c.show_face_set(m.ShowFaceSetRequest(face_set_name=missing)),
              400, "FRS.0302")

    run_error("DetectFaceByBase64 (no face)", lambda: c.detect_face_by_base64(m.DetectFaceByBase64Request(
        body=m.FaceDetectBase64Req(image_base64=b64(faceless)))), 400, "FRS.0501")
    run_error("DetectFaceByFile (no face)", lambda: c.detect_face_by_file(m.DetectFaceByFileRequest(
        body=m.DetectFaceByFileRequestBody(image_file=FormFile(faceless)))), 400, "FRS.0501")
    run_error("CompareFaceByBase64 (no face)", lambda: c.compare_face_by_base64(m.CompareFaceByBase64Request(
        body=m.FaceCompareBase64Req(image1_base64=b64(samples[0]), image2_base64=b64(faceless)))), 400, "FRS.0501")
    run_error("AddFacesByBase64 (no face)", lambda: c.add_faces_by_base64(m.AddFacesByBase64Request(
        face_set_name=st.set_name, body=m.AddFacesBase64Req(image_base64=b64(faceless)))), 400, "FRS.0404")
    run_error("AddFacesByFile (no face)", lambda: c.add_faces_by_file(m.AddFacesByFileRequest(
        face_set_name=st.set_name, body=m.AddFacesByFileRequestBody(image_file=FormFile(faceless), single=True))),
        400, "FRS.0404")
    run_error("SearchFaceByBase64 (no face)", lambda: c.search_face_by_base64(m.SearchFaceByBase64Request(
        face_set_name=st.set_name, body=m.FaceSearchBase64Req(image_base64=b64(faceless)))), 400, "FRS.0304")
    run_error("AddFacesByBase64 (bad field value)", lambda: c.add_faces_by_base64(m.AddFacesByBase64Request(
        face_set_name=st.set_name, body=m.AddFacesBase64Req(image_base64=b64(samples[0]),
                                                            external_fields={"dept": "seven"}))), 400, "FRS.0012")

    # Liveness is not served: the SDK gets the gateway's answer for an unknown API.
    run_error("DetectLiveFaceByBase64 (not served)", lambda: c.detect_live_face_by_base64(
        m.DetectLiveFaceByBase64Request(body=m.LiveDetectFaceBase64Req(image_base64=b64(samples[0])))),
        404, "APIG.0101")
    check_eq(face_number(c, st), before, "face_number after the refused requests")


def delete_faces(c, st):
    from huaweicloudsdkfrs.v2 import model as m

    def deleted(r, what, count):
        check_eq((r.face_number, r.face_set_name, r.face_set_id), (count, st.set_name, st.set_id), f"{what} response")

    def forget(ids):
        for i in ids:
            st.faces.pop(i)
            st.order.remove(i)

    target = st.img3[0]
    r = run("DeleteFaceByFaceId", lambda: c.delete_face_by_face_id(m.DeleteFaceByFaceIdRequest(
        face_set_name=st.set_name, face_id=target)), lambda r: f"{target}: face_number {r.face_number}")
    deleted(r, "DeleteFaceByFaceId", 1)
    forget([target])
    run_error("DeleteFaceByFaceId (again)", lambda: c.delete_face_by_face_id(m.DeleteFaceByFaceIdRequest(
        face_set_name=st.set_name, face_id=target)), 400, "FRS.0403")

    r = run("DeleteFaceByExternalImageId", lambda: c.delete_face_by_external_image_id(
        m.DeleteFaceByExternalImageIdRequest(face_set_name=st.set_name, external_image_id="img4")),
        lambda r: f"img4: face_number {r.face_number}")
    deleted(r, "DeleteFaceByExternalImageId", len(st.img4))
    forget(st.img4)
    run_error("DeleteFaceByExternalImageId (none)", lambda: c.delete_face_by_external_image_id(
        m.DeleteFaceByExternalImageIdRequest(face_set_name=st.set_name, external_image_id="img4")), 400, "FRS.0407")

    r = run("BatchDeleteFaces", lambda: c.batch_delete_faces(m.BatchDeleteFacesRequest(
        face_set_name=st.set_name, body=m.DeleteFacesBatchReq(filter="dept:[1 TO 1] && vip:true"))),
        lambda r: f"dept:1 && vip:true: face_number {r.face_number}")
    deleted(r, "BatchDeleteFaces", len(st.img1))
    forget(st.img1)
    run_error("BatchDeleteFaces (none)", lambda: c.batch_delete_faces(m.BatchDeleteFacesRequest(
        face_set_name=st.set_name, body=m.DeleteFacesBatchReq(filter="dept:1"))), 400, "FRS.0407")

    r = run("ShowFacesByLimit (after deletes)", lambda: c.show_faces_by_limit(m.ShowFacesByLimitRequest(
        face_set_name=st.set_name, offset=0, limit=10)), lambda r: f"{[f.face_id for f in r.faces]}")
    check_eq([f.face_id for f in r.faces], st.order, "faces left after the deletes")
    check_eq(face_number(c, st), len(st.order), "face_number after the deletes")

    r = run("DeleteFaceSet", lambda: c.delete_face_set(m.DeleteFaceSetRequest(face_set_name=st.set_name)),
            lambda r: f"{r.face_set_name}")
    check_eq(r.face_set_name, st.set_name, "DeleteFaceSet face_set_name")
    run_error("ShowFaceSet (deleted)", lambda: c.show_face_set(m.ShowFaceSetRequest(face_set_name=st.set_name)),
              400, "FRS.0302")
    r = run("ShowAllFaceSets (after delete)", lambda: c.show_all_face_sets(m.ShowAllFaceSetsRequest()),
            lambda r: f"{len(r.face_sets_info)} sets")
    check(all(s.face_set_name != st.set_name for s in r.face_sets_info), "ShowAllFaceSets still lists the deleted set")


# ---------------------------------------------------------------------------------------------
# Authentication (--auth)


def raw_signed(args, method, path, query=(), body=None, sdk_date=None, ak=None, sk=None):
    """A request signed by the SDK's own Signer: (method, url, headers, body) ready for `requests`."""
    from urllib.parse import urlparse

    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    endpoint = urlparse(args.endpoint)
    headers = {"Content-Type": "application/json", "X-Project-Id": args.project_id}
    if sdk_date is not None:
        headers["X-Sdk-Date"] = sdk_date.strftime("%Y%m%dT%H%M%SZ")
    data = json.dumps(body).encode() if body is not None else None
    request = SdkRequest(method=method, schema=endpoint.scheme, host=endpoint.netloc, resource_path=path,
                         query_params=list(query), header_params=headers, body=data)
    Signer(BasicCredentials(ak or args.ak, sk or args.sk, args.project_id)).sign(request)
    return request


def send(request, url=None, body=None, headers=None):
    import requests

    response = requests.request(request.method, url or request.url, headers=headers or request.header_params,
                                data=request.body if body is None else body, timeout=60)
    EXCHANGES.last = response
    return response


def check_raw(operation, response, status, code):
    check_eq(response.status_code, status, f"{operation}: HTTP status (body {response.text[:300]!r})")
    if code is not None:
        try:
            payload = response.json()
        except ValueError:
            raise Mismatch(f"{operation}: body is not JSON: {response.text[:300]!r}")
        check_eq(payload.get("error_code"), code, f"{operation}: error_code")
        check(payload.get("error_msg"), f"{operation}: empty error_msg")
    check(REQUEST_ID.match(response.headers.get("X-Request-Id", "")), f"{operation}: X-Request-Id missing")
    ok(operation, f"{response.status_code} {code or ''} {response.text[:100] if code else ''}".rstrip())


def authentication(args, c, st, samples):
    from huaweicloudsdkfrs.v2 import model as m

    st.before_auth = face_number(c, st)
    faces_before = dict((i, dict(f)) for i, f in st.faces.items())

    def unchanged(what):
        EXCHANGES.last = None
        check_eq(face_number(c, st), st.before_auth, f"{what}: face_number")
        r = c.show_faces_by_limit(m.ShowFacesByLimitRequest(face_set_name=st.set_name, offset=0, limit=100))
        now = {f.face_id: (f.external_image_id, f.external_fields) for f in r.faces}
        was = {i: (f["external_image_id"], f["external_fields"]) for i, f in faces_before.items()}
        check_eq(now, was, f"{what}: the faces")
        names = [s.face_set_name for s in c.show_all_face_sets(m.ShowAllFaceSetsRequest()).face_sets_info]
        check_eq(names, st.set_names, f"{what}: the face sets")

    st.set_names = [s.face_set_name for s in c.show_all_face_sets(m.ShowAllFaceSetsRequest()).face_sets_info]
    add = m.AddFacesByBase64Request(face_set_name=st.set_name, body=m.AddFacesBase64Req(
        image_base64=b64(samples[5]), external_image_id="intruder", single=True))

    wrong_secret = new_client(args.endpoint, args.ak, args.sk[::-1] + "x", args.project_id)
    run_error("auth: wrong secret (add)", lambda: wrong_secret.add_faces_by_base64(add), 401, "APIG.0301")
    run_error("auth: wrong secret (list)", lambda: wrong_secret.show_all_face_sets(m.ShowAllFaceSetsRequest()),
              401, "APIG.0301")
    unknown = new_client(args.endpoint, "UNKNOWNACCESSKEY0000", args.sk, args.project_id)
    run_error("auth: unknown AK (add)", lambda: unknown.add_faces_by_base64(add), 401, "APIG.0301")

    # The key of project P used on project Q's path, and Q's key on P's set.
    mine_elsewhere = new_client(args.endpoint, args.ak, args.sk, args.other_project_id)
    run_error("auth: other project's id (create)", lambda: mine_elsewhere.create_face_set(m.CreateFaceSetRequest(
        body=m.CreateFaceSetReq(face_set_name=st.set_name))), 403, "FRS.0028")
    run_error("auth: other project's id (list)", lambda: mine_elsewhere.show_all_face_sets(
        m.ShowAllFaceSetsRequest()), 403, "FRS.0028")
    theirs_here = new_client(args.endpoint, args.other_ak, args.other_sk, args.project_id)
    run_error("auth: other project's key (add)", lambda: theirs_here.add_faces_by_base64(add), 403, "FRS.0028")
    run_error("auth: other project's key (delete set)", lambda: theirs_here.delete_face_set(
        m.DeleteFaceSetRequest(face_set_name=st.set_name)), 403, "FRS.0028")
    theirs = new_client(args.endpoint, args.other_ak, args.other_sk, args.other_project_id)
    r = run("auth: other project's own sets", lambda: theirs.show_all_face_sets(m.ShowAllFaceSetsRequest()),
            lambda r: f"{len(r.face_sets_info)} sets")
    check_eq(r.face_sets_info, [], "the other project sees none of this project's sets")

    reader = new_client(args.endpoint, args.readonly_ak, args.readonly_sk, args.project_id)
    r = run("auth: read-only show", lambda: reader.show_face_set(m.ShowFaceSetRequest(face_set_name=st.set_name)),
            lambda r: f"face_number {r.face_set_info.face_number}")
    r = run("auth: read-only search", lambda: reader.search_face_by_face_id(m.SearchFaceByFaceIdRequest(
        face_set_name=st.set_name, body=m.FaceSearchFaceIdReq(face_id=st.img2[0], top_n=1))),
        lambda r: f"{r.faces[0].face_id}")
    run_error("auth: read-only add", lambda: reader.add_faces_by_base64(add), 403, "APIG.0302")
    run_error("auth: read-only delete", lambda: reader.delete_face_by_face_id(m.DeleteFaceByFaceIdRequest(
        face_set_name=st.set_name, face_id=st.img2[0])), 403, "APIG.0302")
    run_error("auth: read-only update", lambda: reader.update_face(m.UpdateFaceRequest(
        face_set_name=st.set_name, body=m.UpdateFaceReq(face_id=st.img2[0], external_image_id="ro"))),
        403, "APIG.0302")
    run_error("auth: read-only create set", lambda: reader.create_face_set(m.CreateFaceSetRequest(
        body=m.CreateFaceSetReq(face_set_name="ro-set"))), 403, "APIG.0302")
    unchanged("after the refused SDK calls")

    # Raw requests signed with the SDK's Signer, then tampered with before sending.
    faces_path = f"/v2/{args.project_id}/face-sets/{st.set_name}/faces"
    victim = st.img2[0]
    req = raw_signed(args, "GET", faces_path, query=[("face_id", victim)])
    check_raw("auth: raw signed request", send(req), 200, None)
    req = raw_signed(args, "PUT", faces_path, body={"face_id": victim, "external_image_id": "signed"})
    check_raw("auth: raw, body changed", send(req, body=json.dumps(
        {"face_id": victim, "external_image_id": "tampered"}).encode()), 401, "APIG.0301")
    req = raw_signed(args, "DELETE", f"/v2/{args.project_id}/face-sets/no-such-set")
    check_raw("auth: raw, path changed", send(
        req, url=f"{args.endpoint}/v2/{args.project_id}/face-sets/{st.set_name}"), 401, "APIG.0301")
    req = raw_signed(args, "DELETE", faces_path, query=[("face_id", "NoSuchId")])
    check_raw("auth: raw, query changed", send(req, url=f"{args.endpoint}{faces_path}?face_id={victim}"),
              401, "APIG.0301")
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
    req = raw_signed(args, "DELETE", faces_path, query=[("face_id", victim)], sdk_date=old)
    check_raw("auth: raw, X-Sdk-Date 16 minutes old", send(req), 401, "APIG.0301")
    req = raw_signed(args, "DELETE", faces_path, query=[("face_id", victim)])
    headers = {k: v for k, v in req.header_params.items() if k.lower() != "authorization"}
    check_raw("auth: raw, no signature", send(req, headers=headers), 401, "APIG.0301")
    unchanged("after the tampered requests")

    # Tokens: AK/SK-signed POST /v3/auth/tokens, then X-Auth-Token.
    import requests

    # Shaped like IAM's request; frs takes who the token acts as from the signature, not the body.
    token_body = {"auth": {"identity": {"methods": ["hw_ak_sk"]},
                           "scope": {"project": {"id": args.project_id}}}}
    req = raw_signed(args, "POST", "/v3/auth/tokens", body=token_body)
    response = send(req)
    check_raw("auth: POST /v3/auth/tokens", response, 201, None)
    token = response.headers.get("X-Subject-Token")
    check(token, "POST /v3/auth/tokens: no X-Subject-Token header")
    check_eq(response.json().get("token", {}).get("project", {}).get("id"), args.project_id,
             "POST /v3/auth/tokens: token.project.id")
    url = f"{args.endpoint}/v2/{args.project_id}/face-sets/{st.set_name}"
    response = requests.get(url, headers={"X-Auth-Token": token, "Content-Type": "application/json"}, timeout=60)
    EXCHANGES.last = response
    check_raw("auth: X-Auth-Token", response, 200, None)
    check_eq(response.json()["face_set_info"]["face_number"], st.before_auth, "face_number seen with the token")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = requests.delete(url, headers={"X-Auth-Token": tampered, "Content-Type": "application/json"}, timeout=60)
    EXCHANGES.last = response
    check_raw("auth: tampered X-Auth-Token", response, 403, "FRS.0002")
    unchanged("after the token requests")


# ---------------------------------------------------------------------------------------------


def main():
    args = parse_args()
    ensure_sdk()
    if args.install_only:
        print(f"{NAME}: {VENV} has the pinned SDK ({sys.executable})")
        return
    samples = load_samples(args.images)
    scratch = os.path.join(VENV, "tmp")
    os.makedirs(scratch, exist_ok=True)
    faceless = faceless_bmp(os.path.join(scratch, f"faceless-{os.getpid()}.bmp"))
    started = time.monotonic()
    client = new_client(args.endpoint, args.ak, args.sk, args.project_id)
    st = State()
    try:
        region_client(args)
        detected1 = detect_and_compare(client, samples)
        create_and_show_sets(client, st)
        add_faces(client, st, samples, detected1)
        show_and_update(client, st)
        search(client, st, samples)
        refused_inputs(client, st, samples, faceless)
        if args.auth:
            authentication(args, client, st, samples)
        delete_faces(client, st)
    except Mismatch as e:
        print(f"FAIL  {e}\n{describe(EXCHANGES.last)}", flush=True)
        sys.exit(1)
    except Exception:  # an SDK or script error: the traceback and the exchange that caused it
        import traceback

        print(f"FAIL  unexpected error\n{traceback.format_exc()}{describe(EXCHANGES.last)}", flush=True)
        sys.exit(1)
    finally:
        os.remove(faceless)
    print(f"{NAME}: every check passed in {time.monotonic() - started:.1f}s"
          f"{' (with authentication)' if args.auth else ' (authentication not checked)'}")


if __name__ == "__main__":
    main()
