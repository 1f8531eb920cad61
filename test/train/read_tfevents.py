# An independent reader of TensorBoard event files, written from the TFRecord and
# tensorflow/core/util/event.proto / summary.proto definitions (not from the TypeScript writer):
# checks each record's masked CRC-32C of the length and of the data, and decodes the Event
# fields. When the `tensorboard` package is installed, its EventFileLoader reads the file too.
# stdin: {"file": path}; prints {"events": [...], "tensorboard": [...] or null}.
import json
import struct
import sys


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf: bytes, i: int):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; value is bytes, int or raw fixed bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
        yield number, wire, value


def event(data: bytes) -> dict:
    out = {"values": []}
    for number, wire, value in fields(data):
        if number == 1 and wire == 1:
            out["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            out["step"] = value
        elif number == 3 and wire == 2:
            out["file_version"] = value.decode("utf-8")
        elif number == 5 and wire == 2:  # Summary
            for vn, vw, v in fields(value):
                assert vn == 1 and vw == 2, "Summary holds only Values"
                tag, simple = None, None
                for n, w, x in fields(v):
                    if n == 1 and w == 2:
                        tag = x.decode("utf-8")
                    elif n == 2 and w == 5:
                        simple = struct.unpack("<f", x)[0]
                out["values"].append([tag, simple])
        else:
            raise ValueError(f"unexpected Event field {number} (wire {wire})")
    return out


def read(path: str) -> list:
    events = []
    with open(path, "rb") as f:
        buf = f.read()
    i = 0
    while i < len(buf):
        header = buf[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", buf[i + 8:i + 12])
        assert length_crc == masked(header), f"record at {i}: length CRC mismatch"
        data = buf[i + 12:i + 12 + length]
        (data_crc,) = struct.unpack("<I", buf[i + 12 + length:i + 16 + length])
        assert data_crc == masked(data), f"record at {i}: data CRC mismatch"
        events.append(event(data))
        i += 16 + length
    return events


def with_tensorboard(path: str):
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    except ImportError:
        return None
    return [[e.step, [[v.tag, v.simple_value] for v in e.summary.value]] for e in EventFileLoader(path).Load()]


if __name__ == "__main__":
    request = json.load(sys.stdin)
    print(json.dumps({"events": read(request["file"]), "tensorboard": with_tensorboard(request["file"])}))
