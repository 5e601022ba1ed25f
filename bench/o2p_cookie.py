#!/usr/bin/env python3
"""Mint an oauth2-proxy (v7) session cookie offline, for bench/run.sh's oauth2-proxy row.

    o2p_cookie.py COOKIE_SECRET LOGIN EMAIL [COOKIE_NAME]

Prints `NAME=VALUE` (NAME defaults to `_oauth2_proxy`), the cookie oauth2-proxy's cookie
session store would set after a GitHub sign-in of LOGIN, so the bench needs no GitHub.

The format, as oauth2-proxy v7 writes it (pkg/sessions/cookie, pkg/apis/sessions,
pkg/encryption):
  session  = MessagePack map of the SessionState fields (short keys: "e" email, "u" user,
             "pu" preferred username, "at" access token; empty fields left out)
  packed   = an LZ4 frame of `session` (the cookie store always compresses)
  sealed   = AES-CFB (128-bit segments) of `packed` with a random 16-byte IV in front; the key is
             the cookie secret base64url-decoded when that gives 16, 24 or 32 bytes, else the
             secret's own bytes
  VALUE    = b64url(sealed) "|" unix time "|" b64url(HMAC-SHA256(secret, NAME + b64url(sealed) +
             unix time)), base64 with padding, HMAC keyed with the secret string as given

Python's standard library plus the `openssl` command (for AES-CFB); nothing to install.
"""

import base64
import hashlib
import hmac
import os
import struct
import subprocess
import sys
import time

MASK = 0xFFFFFFFF


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32 for inputs shorter than 16 bytes (all an LZ4 frame header checksum needs)."""
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    assert len(data) < 16

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & MASK

    h = (seed + p5 + len(data)) & MASK
    i = 0
    while i + 4 <= len(data):
        (word,) = struct.unpack_from("<I", data, i)
        h = (rotl((h + word * p3) & MASK, 17) * p4) & MASK
        i += 4
    for byte in data[i:]:
        h = (rotl((h + byte * p5) & MASK, 11) * p1) & MASK
    h ^= h >> 15
    h = (h * p2) & MASK
    h ^= h >> 13
    h = (h * p3) & MASK
    h ^= h >> 16
    return h


def lz4_frame(payload: bytes) -> bytes:
    """An LZ4 frame holding `payload` as one uncompressed block (valid LZ4; any reader takes it)."""
    assert len(payload) <= 65536
    descriptor = bytes([0x60, 0x40])  # version 01, independent blocks; 64 KiB blocks
    header_checksum = (xxh32(descriptor) >> 8) & 0xFF
    return (
        struct.pack("<I", 0x184D2204)
        + descriptor
        + bytes([header_checksum])
        + struct.pack("<I", len(payload) | 0x80000000)  # high bit: stored uncompressed
        + payload
        + struct.pack("<I", 0)  # end mark
    )


def msgpack_str(text: str) -> bytes:
    raw = text.encode()
    if len(raw) < 32:
        return bytes([0xA0 | len(raw)]) + raw
    if len(raw) < 256:
        return bytes([0xD9, len(raw)]) + raw
    return bytes([0xDA]) + struct.pack(">H", len(raw)) + raw


def msgpack_map(fields: dict) -> bytes:
    assert len(fields) < 16
    out = bytes([0x80 | len(fields)])
    for key, value in fields.items():
        out += msgpack_str(key) + msgpack_str(value)
    return out


def cipher_key(secret: str) -> bytes:
    """oauth2-proxy's encryption.SecretBytes: base64url (no padding) when that decodes to an AES
    key length, else the secret's own bytes."""
    text = secret.rstrip("=")
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    if text and set(text) <= alphabet and len(text) % 4 != 1:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if len(decoded) in (16, 24, 32):
            return decoded
    return secret.encode()


def aes_cfb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    iv = os.urandom(16)
    bits = len(key) * 8
    if bits not in (128, 192, 256):
        sys.exit(f"o2p_cookie.py: the cookie secret gives a {len(key)}-byte key; oauth2-proxy needs 16, 24 or 32")
    sealed = subprocess.run(
        ["openssl", "enc", f"-aes-{bits}-cfb", "-K", key.hex(), "-iv", iv.hex(), "-nosalt"],
        input=plaintext,
        capture_output=True,
        check=True,
    ).stdout
    return iv + sealed


def signed_value(secret: str, name: str, value: bytes, now: int) -> str:
    encoded = base64.urlsafe_b64encode(value).decode()
    stamp = str(now)
    mac = hmac.new(secret.encode(), (name + encoded + stamp).encode(), hashlib.sha256).digest()
    return f"{encoded}|{stamp}|{base64.urlsafe_b64encode(mac).decode()}"


def main() -> None:
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: o2p_cookie.py COOKIE_SECRET LOGIN EMAIL [COOKIE_NAME]")
    secret, login, email = sys.argv[1:4]
    name = sys.argv[4] if len(sys.argv) == 5 else "_oauth2_proxy"
    # A GitHub session as oauth2-proxy stores it: user, email, login and a token-sized access
    # token (never sent upstream without --pass-access-token).
    session = msgpack_map({"at": "gho_" + "b" * 36, "e": email, "u": login, "pu": login})
    sealed = aes_cfb_encrypt(cipher_key(secret), lz4_frame(session))
    print(f"{name}={signed_value(secret, name, sealed, int(time.time()))}")


if __name__ == "__main__":
    main()
