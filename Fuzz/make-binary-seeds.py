#!/usr/bin/env python3
"""Writes the binary seed files of Fuzz/corpus/{safetensors,pickle} (standard library only).

The torch.save layouts (legacy and zip) are built by hand, as Tests/.../TorchImportTests.swift
does, so that no PyTorch installation is needed."""
import json, os, pickle, struct, zipfile, io

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def write(sub, name, data):
    os.makedirs(os.path.join(here, sub), exist_ok=True)
    with open(os.path.join(here, sub, name), "wb") as f:
        f.write(data)

# --- safetensors ---------------------------------------------------------------------------
def safetensors(tensors, metadata):
    header, blob = {}, b""
    for name, shape, values in tensors:
        data = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob

write("safetensors", "two-tensors.safetensors",
      safetensors([("a", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [3], [0.5, -1, 1e-3])], {"format": "qdf", "dim": "3"}))
write("safetensors", "scalar-empty.safetensors", safetensors([("s", [], [7]), ("e", [0, 4], [])], None))

# --- pickles ---------------------------------------------------------------------------------
write("pickle", "orbital-dict.pkl", pickle.dumps({"H1s": 0, "C1s": 1, "C2s": 2, "C2p": 3}, protocol=2))
write("pickle", "orbital-dict-p4.pkl", pickle.dumps({"H1s": 0, "O2p": 1}, protocol=4))

class PW:  # the opcodes TorchImportTests' PickleWriter uses
    def __init__(self): self.b = bytearray([0x80, 2])
    def op(self, x): self.b.append(x)
    def string(self, s):
        e = s.encode(); self.op(0x58); self.b += struct.pack("<I", len(e)) + e
    def int(self, i): self.op(0x4a); self.b += struct.pack("<i", i)
    def glob(self, m, n): self.op(0x63); self.b += ("%s\n%s\n" % (m, n)).encode()
    def mark(self): self.op(0x28)
    def ordered_dict(self): self.glob("collections", "OrderedDict"); self.op(0x29); self.op(0x52)

def state_dict(tensors, legacy):
    p = PW(); p.ordered_dict(); p.mark()
    for name, key, storage, shape, strides in tensors:
        p.string(name); p.glob("torch._utils", "_rebuild_tensor_v2"); p.mark()
        p.mark(); p.string("storage"); p.glob("torch", "FloatStorage"); p.string(key); p.string("cpu")
        p.int(len(storage))
        if legacy: p.op(0x4e)
        p.op(0x74); p.op(0x51); p.int(0)
        p.mark(); [p.int(s) for s in shape]; p.op(0x74)
        p.mark(); [p.int(s) for s in strides]; p.op(0x74)
        p.op(0x89); p.ordered_dict(); p.op(0x74); p.op(0x52)
    p.op(0x75); p.op(0x2e)
    return bytes(p.b)

T = [("W.weight", "0", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], [3, 1]),
     ("W.bias", "1", [0.5, -0.5], [2], [1])]

legacy = bytes([0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e])
legacy += bytes([0x80, 2, 0x4d, 0xe9, 0x03, 0x2e])
info = PW(); info.op(0x7d); info.mark(); info.string("protocol_version"); info.int(1001)
info.string("little_endian"); info.op(0x88); info.op(0x75); info.op(0x2e)
legacy += bytes(info.b) + state_dict(T, True)
keys = PW(); keys.op(0x5d); keys.mark(); [keys.string(t[1]) for t in T]; keys.op(0x65); keys.op(0x2e)
legacy += bytes(keys.b)
for t in T:
    legacy += struct.pack("<Q", len(t[2])) + struct.pack("<%df" % len(t[2]), *t[2])
write("pickle", "legacy.pt", legacy)

buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", state_dict(T, False))
    z.writestr("archive/byteorder", b"little")
    for t in T:
        z.writestr("archive/data/" + t[1], struct.pack("<%df" % len(t[2]), *t[2]))
    z.writestr("archive/version", b"3\n")
write("pickle", "zip.pt", buf.getvalue())
