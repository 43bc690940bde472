"""Regenerates usher-cdn's vendor known-answer vectors with the vendors' own code, and prints them as JSON.

Run by scripts/vendor-vectors.sh inside a venv holding requirements.txt (exact versions, hashed), never by
hand with whatever Python packages happen to be around. Each vector records its inputs, its value and where
the value comes from; the Rust unit tests read the values (testdata/vectors.json) instead of literals.

- Akamai EdgeAuth 2.0: `akamai-edgeauth` (Akamai's EdgeAuth-Token-Python), `EdgeAuth(...)` then
  `generate_acl_token` / `generate_url_token`.
- CloudFront: botocore's `CloudFrontSigner` (`build_policy`, `generate_presigned_url`) with `rsa.sign` as the
  RSA signer, as botocore's documentation shows. Every signature is then verified with
  `openssl dgst -verify` against the test key's public half, and a changed policy must fail that check.
- nginx secure_link: the reference is nginx itself. nginx computes no hash it could print, so a link is made
  here from the `secure_link_md5` expression and a real nginx (Debian's) with that expression must answer 200
  to it and 403 to the same link with its hash changed; a link nginx does not accept stops the run.

Bunny and Google have no reference code on a registry: their vectors are the vendors' published test values,
kept as literals in the Rust tests with their source (see the README).

Usage: generate.py OUTPUT.json   (the caller compares or copies it)
"""

import base64
import hashlib
import http.client
import importlib.metadata
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime, timezone

CRATE = pathlib.Path(__file__).resolve().parent.parent
TESTDATA = CRATE / "testdata"


def pypi(package, call):
    """Where a value comes from: the installed version, read from the package's metadata, so the file says
    what actually ran."""
    return {
        "registry": "PyPI",
        "package": package,
        "version": importlib.metadata.version(package),
        "call": call,
    }


# --- Akamai -------------------------------------------------------------------------------------------

AKAMAI_KEY = "aabbccddeeff00112233445566778899"


def akamai_vectors():
    from akamai.edgeauth import EdgeAuth

    # (name, EdgeAuth keyword arguments, "acl" or "url", what is passed to generate_*_token)
    cases = [
        (
            "acl_start_sha256",
            {"key": AKAMAI_KEY, "start_time": 1700000000, "end_time": 1700003600},
            "acl",
            "/demo/*",
        ),
        (
            "acl_two_acls_ip_id_data",
            {
                "key": AKAMAI_KEY,
                "end_time": 1700003600,
                "ip": "192.0.2.1",
                "session_id": "s_0123456789abcdef0123456789abcdef",
                "payload": "show=demo",
            },
            "acl",
            ["/demo/*", "/other/*"],
        ),
        (
            "url_sha1",
            {"key": AKAMAI_KEY, "algorithm": "sha1", "end_time": 1700003600},
            "url",
            "/demo/master.m3u8",
        ),
        (
            "url_md5_salt",
            {"key": AKAMAI_KEY, "algorithm": "md5", "end_time": 1700003600, "salt": "pepper"},
            "url",
            "/demo/master.m3u8",
        ),
        (
            "acl_salt_session",
            {"key": AKAMAI_KEY, "end_time": 1700003600, "salt": "pepper", "session_id": "abc123"},
            "acl",
            "/demo/*",
        ),
        (
            "acl_escape_early_session_data",
            {
                "key": AKAMAI_KEY,
                "end_time": 1700003600,
                "session_id": "user:1;x y",
                "payload": "a&b",
                "escape_early": True,
            },
            "acl",
            "/demo/*",
        ),
        (
            "url_escape_early_ip",
            {"key": AKAMAI_KEY, "end_time": 1700003600, "ip": "2001:db8::1", "escape_early": True},
            "url",
            "/demo/a%20b.m3u8?x=1",
        ),
    ]
    out = []
    for name, kwargs, kind, target in cases:
        edge_auth = EdgeAuth(**kwargs)
        if kind == "acl":
            token = edge_auth.generate_acl_token(target)
        else:
            token = edge_auth.generate_url_token(target)
        out.append(
            {
                "id": f"akamai/{name}",
                "source": pypi(
                    "akamai-edgeauth",
                    f"akamai.edgeauth.EdgeAuth(**inputs.edge_auth).generate_{kind}_token(inputs.{kind})",
                ),
                "inputs": {"edge_auth": kwargs, kind: target},
                "value": token,
            }
        )
    return out


# --- CloudFront ---------------------------------------------------------------------------------------

CF_KEY_PAIR_ID = "APKAEIBAERJR2EXAMPLE"
CF_PRIVATE = TESTDATA / "aws-sdk-js-v3-test-key.pem"
CF_PUBLIC = TESTDATA / "aws-sdk-js-v3-test-key.pub.pem"
CF_URL = "https://d111111abcdef8.cloudfront.net/private-content/private.jpeg"
CF_MASTER = "https://d111111abcdef8.cloudfront.net/demo/master.m3u8"
CF_FOLDER = "https://d111111abcdef8.cloudfront.net/demo/*"
# 2020-01-01 and 2019-12-01, the dates of the AWS SDK for JavaScript v3's signer test
CF_EXPIRES = 1577836800
CF_STARTS = 1575158400


def cf_b64(data):
    return base64.b64encode(data).replace(b"+", b"-").replace(b"=", b"_").replace(b"/", b"~").decode()


def cf_unb64(text):
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def openssl_verifies(digest, policy, signature, work):
    """`openssl dgst -<digest> -verify` of `signature` (raw bytes) over `policy` with the public key."""
    sig = work / "signature.bin"
    msg = work / "policy.json"
    sig.write_bytes(signature)
    msg.write_bytes(policy)
    run = subprocess.run(
        ["openssl", "dgst", f"-{digest}", "-verify", str(CF_PUBLIC), "-signature", str(sig), str(msg)],
        capture_output=True,
        text=True,
    )
    return run.returncode == 0 and run.stdout.strip() == "Verified OK"


def cloudfront_vectors(work):
    import rsa
    from botocore.signers import CloudFrontSigner

    # the committed public key must be the private key's public half, or verifying against it proves nothing
    derived = subprocess.run(
        ["openssl", "rsa", "-in", str(CF_PRIVATE), "-pubout"], capture_output=True, text=True, check=True
    ).stdout
    if derived.strip() != CF_PUBLIC.read_text().strip():
        sys.exit(f"{CF_PUBLIC.name} is not the public half of {CF_PRIVATE.name}")

    private = rsa.PrivateKey.load_pkcs1(CF_PRIVATE.read_bytes())

    def utc(t):
        return datetime.fromtimestamp(t, tz=timezone.utc)

    # (name, hash, URL signed, custom policy arguments or None for a canned policy)
    cases = [
        ("canned_sha1", "SHA-1", CF_URL, None),
        ("canned_sha256", "SHA-256", CF_URL, None),
        (
            "custom_wildcard_start_ip_sha1",
            "SHA-1",
            CF_MASTER,
            {"resource": CF_FOLDER, "date_greater_than": CF_STARTS, "ip_address": "10.0.0.0"},
        ),
        ("custom_wildcard_sha256", "SHA-256", CF_MASTER, {"resource": CF_FOLDER}),
    ]
    out = []
    for name, hash_name, url, custom in cases:
        signatures = []

        def rsa_signer(message, hash_name=hash_name, signatures=signatures):
            signature = rsa.sign(message, private, hash_name)
            signatures.append(signature)
            return signature

        signer = CloudFrontSigner(CF_KEY_PAIR_ID, rsa_signer)
        if custom is None:
            policy = signer.build_policy(url, utc(CF_EXPIRES))
            signed = signer.generate_presigned_url(url, date_less_than=utc(CF_EXPIRES))
            call = "CloudFrontSigner(key_pair_id, rsa_signer).generate_presigned_url(inputs.url, date_less_than=inputs.expires)"
        else:
            policy = signer.build_policy(
                custom["resource"],
                utc(CF_EXPIRES),
                date_greater_than=utc(custom["date_greater_than"]) if "date_greater_than" in custom else None,
                ip_address=custom.get("ip_address"),
            )
            signed = signer.generate_presigned_url(url, policy=policy)
            call = (
                "CloudFrontSigner(key_pair_id, rsa_signer).generate_presigned_url(inputs.url, "
                "policy=build_policy(inputs.resource, inputs.expires, date_greater_than=inputs.starts, "
                "ip_address=inputs.ip_address))"
            )
        call += f", rsa_signer = rsa.sign(message, key, '{hash_name}')"
        if hash_name == "SHA-256":
            # botocore signs with whatever its RSA signer does and knows no Hash-Algorithm parameter; the
            # CloudFront Developer Guide adds it after Key-Pair-Id for SHA-256 signatures
            signed += "&Hash-Algorithm=SHA256"
            call += " + '&Hash-Algorithm=SHA256'"
        (signature,) = signatures
        digest = {"SHA-1": "sha1", "SHA-256": "sha256"}[hash_name]
        if not openssl_verifies(digest, policy.encode(), signature, work):
            sys.exit(f"cloudfront/{name}: openssl does not verify botocore's signature")
        if openssl_verifies(digest, policy.encode() + b" ", signature, work):
            sys.exit(f"cloudfront/{name}: openssl verifies a changed policy, so its check proves nothing")
        inputs = {"key_pair_id": CF_KEY_PAIR_ID, "hash": hash_name, "url": url, "expires": CF_EXPIRES}
        if custom is not None:
            inputs.update(
                {
                    "resource": custom["resource"],
                    "starts": custom.get("date_greater_than"),
                    "ip_address": custom.get("ip_address"),
                }
            )
        source = pypi("botocore", "botocore.signers." + call)
        source["rsa_signer"] = {"package": "rsa", "version": importlib.metadata.version("rsa")}
        source["verified"] = f"openssl dgst -{digest} -verify {CF_PUBLIC.name}"
        out.append(
            {
                "id": f"cloudfront/{name}",
                "source": source,
                "inputs": inputs,
                "policy": policy,
                "policy_base64": cf_b64(policy.encode()),
                "signature": cf_b64(signature),
                "value": signed,
            }
        )
    return out


# --- nginx --------------------------------------------------------------------------------------------

NGINX_SECRET = "secret"
EXPIRES_2033 = 2000000000

# Each vector's inputs are the Usher signer's settings (`expression` with `$secret` where nginx's
# configuration has the secret) and the request; `location` is the nginx location that checks it.
NGINX_CASES = [
    {
        # the ngx_http_secure_link_module documentation's own example link
        "name": "documentation_example",
        "inputs": {
            "secret": NGINX_SECRET,
            "expression": "$secure_link_expires$uri$remote_addr $secret",
            "delivery": "query",
            "path": "/s/link",
            "expires": 2147483647,
            "client_ip": "127.0.0.1",
        },
        "location": "location / { secure_link $arg_md5,$arg_expires; secure_link_md5 \"$secure_link_expires$uri$remote_addr secret\"; CHECK }",
    },
    {
        # $uri is the decoded path: the hash covers "a b.ts", the link carries "a%20b.ts"
        "name": "decoded_uri_query",
        "inputs": {
            "secret": NGINX_SECRET,
            "expression": "$secure_link_expires$uri $secret",
            "delivery": "query",
            "path": "/demo/a%20b.ts",
            "expires": EXPIRES_2033,
        },
        "location": "location / { secure_link $arg_md5,$arg_expires; secure_link_md5 \"$secure_link_expires$uri secret\"; CHECK }",
    },
    {
        # the path form: hash and expiry in the first segment, the file captured after it
        "name": "path_form",
        "inputs": {
            "secret": NGINX_SECRET,
            "expression": "$secure_link_expires$file $secret",
            "delivery": "path",
            "path_variable": "file",
            "path": "/demo/a%20b.ts",
            "expires": EXPIRES_2033,
        },
        "location": "location ~ ^/(?<secure>[\\w-]+,\\d+)(?<file>/.+)$ { secure_link $secure; secure_link_md5 \"$secure_link_expires$file secret\"; CHECK }",
    },
    {
        # one link for a folder, bound to the session cookie
        "name": "session_and_prefix",
        "inputs": {
            "secret": NGINX_SECRET,
            "expression": "${secure_link_expires}${prefix}${cookie_usher_session} $secret",
            "delivery": "query",
            "session_variable": "cookie_usher_session",
            "prefix_variable": "prefix",
            "path": "/demo/360p/seg_001.ts",
            "prefix": "/demo/",
            "session": "s_1",
            "expires": EXPIRES_2033,
        },
        "location": "location ~ ^(?<prefix>/demo/) { secure_link $arg_md5,$arg_expires; secure_link_md5 \"${secure_link_expires}${prefix}${cookie_usher_session} secret\"; CHECK }",
    },    {
        # a prefix variable that captures the folder's name alone (prefix_holds = folder): "demo", not "/demo/"
        "name": "prefix_folder_name",
        "inputs": {
            "secret": NGINX_SECRET,
            "expression": "$secure_link_expires$folder $secret",
            "delivery": "query",
            "prefix_variable": "folder",
            "prefix_holds": "folder",
            "path": "/demo/360p/seg_001.ts",
            "prefix": "/demo/",
            "expires": EXPIRES_2033,
        },
        "location": "location ~ ^/(?<folder>[^/]+)/ { secure_link $arg_md5,$arg_expires; secure_link_md5 \"$secure_link_expires$folder secret\"; CHECK }",
    },
]

NGINX_CHECK = 'if ($secure_link = "") { return 403; } if ($secure_link = "0") { return 410; } return 200 "ok";'


def nginx_link(case):
    """The link for `case`: base64url(MD5(expression)) without padding, in query or path form."""
    i = case["inputs"]
    values = {
        "secret": i["secret"],
        "secure_link_expires": str(i["expires"]),
        "uri": urllib.parse.unquote(i["path"]),
        "file": urllib.parse.unquote(i["path"]),
        "remote_addr": i.get("client_ip", ""),
        "prefix": i.get("prefix", ""),
        "cookie_usher_session": i.get("session", ""),
        "folder": i.get("prefix", "").strip("/").rsplit("/", 1)[-1],
    }
    text = i["expression"]
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    digest = base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).decode().rstrip("=")
    if i["delivery"] == "path":
        return f"/{digest},{i['expires']}{i['path']}", digest
    return f"{i['path']}?md5={digest}&expires={i['expires']}", digest


def nginx_binary():
    for candidate in ("/usr/sbin/nginx", shutil.which("nginx")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("nginx is not installed (scripts/vendor-vectors.sh installs Debian's nginx)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_vectors(work):
    nginx = nginx_binary()
    ports = [free_port() for _ in NGINX_CASES]
    servers = "\n".join(
        f"  server {{ listen 127.0.0.1:{port}; {case['location'].replace('CHECK', NGINX_CHECK)} }}"
        for port, case in zip(ports, NGINX_CASES)
    )
    d = work / "nginx"
    d.mkdir()
    user = "user root;" if os.getuid() == 0 else ""
    (d / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
{servers}
}}
"""
    )
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    proc = subprocess.Popen(
        [nginx, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        err = (d / "error.log").read_text() if (d / "error.log").exists() else ""
                        sys.exit(f"nginx did not start:\n{proc.stderr.read().decode()}{err}")
                    time.sleep(0.05)

        def status(port, target, session):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            headers = {"Cookie": f"usher_session={session}"} if session else {}
            conn.request("GET", target, headers=headers)
            answer = conn.getresponse().status
            conn.close()
            return answer

        out = []
        for port, case in zip(ports, NGINX_CASES):
            link, digest = nginx_link(case)
            session = case["inputs"].get("session")
            got = status(port, link, session)
            if got != 200:
                sys.exit(f"nginx/{case['name']}: nginx answered {got} to {link}, not 200")
            # the same link with one character of the hash changed must be refused, or 200 proves nothing
            changed = ("A" if digest[0] != "A" else "B") + digest[1:]
            got = status(port, link.replace(digest, changed, 1), session)
            if got != 403:
                sys.exit(f"nginx/{case['name']}: nginx answered {got} to a changed hash, not 403")
            out.append(
                {
                    "id": f"nginx/{case['name']}",
                    "source": {
                        "reference": "nginx secure_link (Debian's nginx package)",
                        "check": "nginx answered 200 to this link and 403 to it with its hash changed",
                        "location": case["location"].replace("CHECK", NGINX_CHECK),
                    },
                    "inputs": case["inputs"],
                    "value": link,
                }
            )
        print(f"nginx: {len(out)} links accepted by {version}", file=sys.stderr)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="usher-vectors-") as tmp:
        work = pathlib.Path(tmp)
        vectors = akamai_vectors() + cloudfront_vectors(work) + nginx_vectors(work)
    document = {
        "about": (
            "Known answers for usher-cdn's unit tests, generated by scripts/vendor-vectors.sh with the "
            "vendors' reference code (crates/usher-cdn/vectors/generate.py, versions pinned in "
            "requirements.txt). Do not edit: regenerate."
        ),
        "vectors": vectors,
    }
    pathlib.Path(sys.argv[1]).write_text(json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    print(f"{len(vectors)} vectors", file=sys.stderr)


if __name__ == "__main__":
    main()
