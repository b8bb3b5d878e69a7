"""Strict gRPC wire-protocol checks of a Bazaar catalog server, from a client that is not grpc-js.

Run by grpc-protocol.test.ts with Debian's /usr/bin/python3 and python3-grpcio (gRPC C-core):

    /usr/bin/python3 strict_grpc_client.py 127.0.0.1:50052

It needs no generated stubs: requests are hand-encoded protobuf bytes sent with identity
serializers; responses are decoded by hand, or with message classes built at run time from the
FileDescriptorProtos that the server's reflection service returns. It prints one JSON object with
what it observed; the test asserts on it. Each check is isolated: an exception is reported in its
section (as "exception") instead of ending the run.

Besides C-core (which only reports status OK when trailers carrying grpc-status arrived), it
speaks raw HTTP/2 (h2c) over a socket for one call of each kind, to report the frame sequence:
gRPC needs the status in a trailing HEADERS frame that ends the stream, which strict proxies such
as Envoy insist on.
"""

import json
import socket
import struct
import sys
import time
import traceback

try:
    import grpc
    import google.protobuf
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as err:  # the test turns this into "install python3-grpcio python3-protobuf"
    print(json.dumps({"fatal": "missing_modules", "detail": str(err), "python": sys.executable}))
    sys.exit(3)

TIMEOUT_S = 10
CATALOG_SERVICE = "bazaar.catalog.v1.CatalogService"
CATALOG_FILE = "bazaar/catalog/v1/catalog.proto"
MISSING_PRODUCT_ID = "00000000-0000-0000-0000-000000000000"


# ---------------------------------------------------------------------------------------------
# A tiny protobuf wire-format encoder and a strict decoder.


def varint(n):
    if n < 0:
        n &= (1 << 64) - 1  # negative int32/int64: two's complement in ten bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3 | 0) + varint(value)


def field_bytes(number, value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    return varint(number << 3 | 2) + varint(len(value)) + value


def read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def decode(buf):
    """Decodes one message's fields into {number: [values]} (varints as int, the rest as bytes)."""
    fields = {}
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("length-delimited field runs past the end")
            value, pos = bytes(buf[pos : pos + length]), pos + length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32")
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        fields.setdefault(number, []).append(value)
    return fields


def first(fields, number, default=None):
    values = fields.get(number)
    return values[0] if values else default


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------------
# Messages (field numbers from grpc/reflection/v1*/reflection.proto, grpc/health/v1/health.proto
# and bazaar/catalog/v1/catalog.proto).


def reflection_list_services():
    return field_bytes(7, "*")  # ServerReflectionRequest.list_services


def reflection_file_containing_symbol(symbol):
    return field_bytes(4, symbol)


def reflection_file_by_filename(name):
    return field_bytes(3, name)


def describe_reflection_response(raw):
    """ServerReflectionResponse → a JSON-friendly summary of the answer it carries."""
    msg = decode(raw)
    out = {}
    original = first(msg, 2)
    if original is not None:
        req = decode(original)
        out["original_request_fields"] = sorted(req.keys())
    if 6 in msg:  # list_services_response
        services = [text(first(decode(s), 1, b"")) for s in decode(msg[6][0]).get(1, [])]
        out["kind"] = "list_services"
        out["services"] = services
    elif 4 in msg:  # file_descriptor_response
        out["kind"] = "file_descriptor"
        out["file_descriptor_protos"] = decode(msg[4][0]).get(1, [])
    elif 7 in msg:  # error_response
        err = decode(msg[7][0])
        out["kind"] = "error"
        out["error_code"] = first(err, 1, 0)
        out["error_message"] = text(first(err, 2, b""))
    else:
        out["kind"] = "unknown"
        out["fields"] = sorted(msg.keys())
    return out


def describe_files(protos):
    """FileDescriptorProto bytes → summaries, parsed with descriptor_pb2."""
    files = []
    for raw in protos:
        fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files.append(
            {
                "name": fdp.name,
                "package": fdp.package,
                "dependencies": list(fdp.dependency),
                "services": {s.name: [m.name for m in s.method] for s in fdp.service},
                "messages": [m.name for m in fdp.message_type],
            }
        )
    return files


def list_products_request(page_size):
    return field_varint(1, page_size)  # ListProductsRequest.page_size (int32)


def get_product_request(product_id):
    return field_bytes(1, product_id)  # GetProductRequest.id


def health_check_request(service):
    return field_bytes(1, service) if service else b""  # HealthCheckRequest.service


# ---------------------------------------------------------------------------------------------
# Calls through gRPC C-core.


def identity(b):
    return b


def describe_status_details(trailing_metadata):
    """The grpc-status-details-bin trailer, decoded by hand as google.rpc.Status (code = 1,
    message = 2, details = 3 of google.protobuf.Any: type_url = 1, value = 2), with the
    google.rpc.BadRequest details (field_violations = 1: field = 1, description = 2) decoded too;
    None when there is no such trailer."""
    raw = next((v for k, v in (trailing_metadata or ()) if k == "grpc-status-details-bin"), None)
    if raw is None:
        return None
    status = decode(raw)
    details = []
    for any_bytes in status.get(3, []):
        any_msg = decode(any_bytes)
        type_url = text(first(any_msg, 1, b""))
        detail = {"type_url": type_url}
        if type_url == "type.googleapis.com/google.rpc.BadRequest":
            detail["field_violations"] = [
                {"field": text(first(v, 1, b"")), "description": text(first(v, 2, b""))}
                for v in (decode(b) for b in decode(first(any_msg, 2, b"")).get(1, []))
            ]
        details.append(detail)
    return {"code": first(status, 1, 0), "message": text(first(status, 2, b"")), "details": details}


def code_info(code):
    return {"code": code.name, "code_number": code.value[0]}


def unary(channel, path, request):
    """One unary call; returns the status, details, metadata and response bytes it ended with."""
    fn = channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)
    try:
        response, call = fn.with_call(request, timeout=TIMEOUT_S)
    except grpc.RpcError as err:  # also a grpc.Call
        return dict(
            code_info(err.code()),
            details=err.details(),
            initial_metadata_keys=sorted(k for k, _ in (err.initial_metadata() or ())),
            trailing_metadata_present=err.trailing_metadata() is not None,
            trailing_metadata_keys=sorted(k for k, _ in (err.trailing_metadata() or ())),
            status_details=describe_status_details(err.trailing_metadata()),
            response=None,
        )
    return dict(
        code_info(call.code()),
        details=call.details(),
        initial_metadata_keys=sorted(k for k, _ in (call.initial_metadata() or ())),
        trailing_metadata_present=call.trailing_metadata() is not None,
        trailing_metadata_keys=sorted(k for k, _ in (call.trailing_metadata() or ())),
        response=response,
    )


def reflection_stream(channel, version, requests):
    """One ServerReflectionInfo bidi stream carrying `requests`; returns the responses and the status."""
    path = "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version
    fn = channel.stream_stream(path, request_serializer=identity, response_deserializer=identity)
    call = fn(iter(requests), timeout=TIMEOUT_S)
    responses = []
    try:
        for raw in call:
            responses.append(raw)
        code = call.code()
        details = call.details()
    except grpc.RpcError as err:
        code, details = err.code(), err.details()
    return dict(code_info(code), details=details, responses=responses)


def section(fn):
    try:
        return fn()
    except Exception as err:  # reported, so the test names what broke
        return {"exception": "%s: %s" % (type(err).__name__, err), "traceback": traceback.format_exc()}


def check_reflection(channel, version):
    requests = [
        reflection_list_services(),
        reflection_file_containing_symbol(CATALOG_SERVICE),
        reflection_file_by_filename("no/such/file.proto"),
    ]
    result = reflection_stream(channel, version, requests)
    answers = [describe_reflection_response(r) for r in result.pop("responses")]
    out = dict(result, response_count=len(answers))
    if len(answers) > 0:
        out["list_services"] = answers[0]
    if len(answers) > 1:
        answer = answers[1]
        protos = answer.pop("file_descriptor_protos", [])
        answer["files"] = describe_files(protos)
        out["file_containing_symbol"] = answer
        out["_protos"] = protos
    if len(answers) > 2:
        out["file_by_unknown_filename"] = answers[2]
    return out


def message_classes(protos, names):
    """Message classes built at run time from FileDescriptorProtos (dependencies first)."""
    pool = descriptor_pool.DescriptorPool()
    by_name = {}
    for raw in protos:
        fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
        by_name[fdp.name] = fdp
    added = set()

    def add(name):
        if name in added:
            return
        fdp = by_name[name]
        for dep in fdp.dependency:
            add(dep)
        pool.Add(fdp)
        added.add(name)

    for name in by_name:
        add(name)
    out = {}
    for name in names:
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            out[name] = message_factory.GetMessageClass(desc)
        else:
            out[name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return out


def check_list_products(channel, protos):
    request = list_products_request(5)
    result = unary(channel, "/%s/ListProducts" % CATALOG_SERVICE, request)
    response = result.pop("response")
    result["response_bytes"] = None if response is None else len(response)
    if response is None:
        return result
    # By hand: count the repeated `products` field.
    fields = decode(response)
    result["hand_decoded_products"] = len(fields.get(1, []))
    result["hand_decoded_total_size"] = first(fields, 3, 0)
    # Strictly, with the schema the server's own reflection described.
    if protos:
        classes = message_classes(
            protos, ["bazaar.catalog.v1.ListProductsResponse", "bazaar.catalog.v1.ListProductsRequest"]
        )
        parsed = classes["bazaar.catalog.v1.ListProductsResponse"].FromString(response)
        result["decoded"] = True
        result["products"] = len(parsed.products)
        result["total_size"] = parsed.total_size
        result["has_next_page_token"] = bool(parsed.next_page_token)
        result["product_names"] = [p.name for p in parsed.products]
        result["products_complete"] = all(
            p.id and p.sku and p.name and p.price.currency_code and p.price.amount_minor > 0 and p.update_time.seconds > 0
            for p in parsed.products
        )
        # The bytes this client sent are what a real protobuf encoder produces.
        reference = classes["bazaar.catalog.v1.ListProductsRequest"](page_size=5).SerializeToString()
        result["hand_encoded_request_matches"] = reference == request
        # Re-encoding the decoded response loses nothing (no unknown or malformed fields).
        result["reencodes_identically"] = parsed.SerializeToString() == response
    return result


# ---------------------------------------------------------------------------------------------
# Raw HTTP/2 (h2c): the frames one call produces.

FRAME_NAMES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, flags):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_string(s):
    data = s.encode("utf-8")
    return hpack_int(len(data), 7, 0) + data  # no Huffman


def hpack_literal(name_index, value):
    return hpack_int(name_index, 4, 0) + hpack_string(value)  # literal without indexing, indexed name


def hpack_literal_new(name, value):
    return b"\x00" + hpack_string(name) + hpack_string(value)


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


def raw_h2_call(address, path, message):
    """One gRPC call over a raw h2c connection; returns the frames of its stream, in order."""
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
    try:
        headers = (
            b"\x83"  # :method POST
            + b"\x86"  # :scheme http
            + hpack_literal(4, path)  # :path
            + hpack_literal(1, address)  # :authority
            + hpack_literal(31, "application/grpc")  # content-type
            + hpack_literal_new("te", "trailers")
        )
        body = b"\x00" + struct.pack(">I", len(message)) + message  # uncompressed gRPC message
        sock.sendall(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            + frame(4, 0, 0)
            + frame(1, END_HEADERS, 1, headers)
            + frame(0, END_STREAM, 1, body)
        )
        frames = []
        data = b""
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            head = recv_exact(sock, 9)
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            stream = struct.unpack(">I", head[5:9])[0] & 0x7FFFFFFF
            payload = recv_exact(sock, length)
            if stream == 0:
                if kind == 4 and not flags & ACK:
                    sock.sendall(frame(4, ACK, 0))
                elif kind == 6 and not flags & ACK:
                    sock.sendall(frame(6, ACK, 0, payload))
                elif kind == 7:
                    frames.append({"type": "GOAWAY", "flags": flags, "length": length})
                    break
                continue
            if stream != 1:
                continue
            frames.append(
                {
                    "type": FRAME_NAMES.get(kind, str(kind)),
                    "end_stream": bool(flags & END_STREAM) if kind in (0, 1) else False,
                    "length": length,
                }
            )
            if kind == 0:
                data += payload
                if length:
                    sock.sendall(frame(8, 0, 0, struct.pack(">I", length)) + frame(8, 0, 1, struct.pack(">I", length)))
            if kind == 3 or (kind in (0, 1) and flags & END_STREAM):
                break
        sock.sendall(frame(7, 0, 0, struct.pack(">II", 1, 0)))  # GOAWAY, NO_ERROR
    finally:
        sock.close()
    messages = []
    pos = 0
    while pos + 5 <= len(data):
        compressed, size = data[pos], struct.unpack(">I", data[pos + 1 : pos + 5])[0]
        messages.append({"compressed": compressed, "length": size, "complete": pos + 5 + size <= len(data)})
        if compressed == 0 and pos + 5 + size <= len(data):
            messages[-1]["products"] = len(decode(data[pos + 5 : pos + 5 + size]).get(1, []))
        pos += 5 + size
    last = frames[-1] if frames else None
    return {
        "frames": frames,
        "sequence": [f["type"] + ("+END_STREAM" if f["end_stream"] else "") for f in frames],
        "ends_with_trailers": bool(last and last["type"] == "HEADERS" and last["end_stream"]),
        "data_ends_stream": any(f["type"] == "DATA" and f["end_stream"] for f in frames),
        "rst_stream": any(f["type"] == "RST_STREAM" for f in frames),
        "grpc_messages": messages,
        "trailing_bytes": len(data) - pos,
    }


# ---------------------------------------------------------------------------------------------


def main():
    if len(sys.argv) != 2:
        print("usage: strict_grpc_client.py HOST:PORT", file=sys.stderr)
        sys.exit(2)
    address = sys.argv[1]
    out = {
        "client": {
            "python": sys.version.split()[0],
            "grpcio": grpc.__version__,
            "protobuf": google.protobuf.__version__,
        }
    }
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT_S)
        out["reflection_v1"] = section(lambda: check_reflection(channel, "v1"))
        out["reflection_v1alpha"] = section(lambda: check_reflection(channel, "v1alpha"))
        protos = out["reflection_v1"].pop("_protos", None) if isinstance(out["reflection_v1"], dict) else None
        out["reflection_v1alpha"].pop("_protos", None)
        out["list_products"] = section(lambda: check_list_products(channel, protos))

        def bad_page_size():
            r = unary(channel, "/%s/ListProducts" % CATALOG_SERVICE, list_products_request(-1))
            r.pop("response")
            return r

        def missing_product():
            r = unary(channel, "/%s/GetProduct" % CATALOG_SERVICE, get_product_request(MISSING_PRODUCT_ID))
            r.pop("response")
            return r

        out["list_products_negative_page_size"] = section(bad_page_size)
        out["get_product_missing"] = section(missing_product)

        def health(service):
            r = unary(channel, "/grpc.health.v1.Health/Check", health_check_request(service))
            response = r.pop("response")
            r["serving_status"] = None if response is None else first(decode(response), 1, 0)
            return r

        out["health_overall"] = section(lambda: health(""))
        out["health_catalog"] = section(lambda: health(CATALOG_SERVICE))
        out["health_unknown"] = section(lambda: health("no.such.Service"))
    finally:
        channel.close()
    out["raw_h2_ok"] = section(lambda: raw_h2_call(address, "/%s/ListProducts" % CATALOG_SERVICE, list_products_request(5)))
    out["raw_h2_error"] = section(lambda: raw_h2_call(address, "/%s/ListProducts" % CATALOG_SERVICE, list_products_request(-1)))
    print(json.dumps(out, indent=1, default=lambda b: b.hex() if isinstance(b, bytes) else str(b)))


if __name__ == "__main__":
    main()
