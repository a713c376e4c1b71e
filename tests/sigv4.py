"""A verifier of AWS Signature Version 4, written from AWS's specification (not botocore's code), for the
proxy that stands in for Amazon OpenSearch Service in the auth tests: it recomputes each request's
signature from what arrived on the wire and the secret it knows, and refuses any mismatch."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import urllib.parse

MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method.")
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$")


class SigV4Verifier:
    def __init__(self, access_key: str, secret_key: str, region: str, service: str, max_skew_s: float = 300):
        self.access_key, self.secret_key = access_key, secret_key
        self.region, self.service, self.max_skew_s = region, service, max_skew_s
        self.verified = 0

    def __call__(self, method: str, path: str, headers, body: bytes) -> str | None:
        """None when the request is signed with our secret, else why it is refused (AWS's wording)."""
        m = _AUTH.match(headers.get("authorization") or "")
        if not m:
            return "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' (AWS4-HMAC-SHA256)"
        credential, signed_headers, signature = m.groups()
        akid, date, region, service, terminator = (credential.split("/") + [""] * 5)[:5]
        if akid != self.access_key:
            return "The security token included in the request is invalid."
        if (region, service, terminator) != (self.region, self.service, "aws4_request"):
            return f"Credential should be scoped to a valid region/service ({self.region}/{self.service})"
        names = signed_headers.split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "host and x-amz-date must be signed"
        amz_date = headers.get("x-amz-date") or ""
        try:
            when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return "X-Amz-Date is not an ISO 8601 basic timestamp"
        if abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) > self.max_skew_s or date != amz_date[:8]:
            return "Signature expired or not yet current"
        payload = hashlib.sha256(body).hexdigest()
        if headers.get("x-amz-content-sha256") not in (None, payload):
            return "The provided 'x-amz-content-sha256' header does not match what was computed."
        raw_path, _, raw_query = path.partition("?")
        canonical = "\n".join([
            method,
            urllib.parse.quote(raw_path, safe="/~"),  # the wire path, encoded once more (all services but S3)
            _canonical_query(raw_query),
            "".join(f"{n}:{' '.join(str(headers.get(n) or '').split())}\n" for n in names),
            signed_headers,
            payload,
        ])
        scope = f"{date}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return MISMATCH
        self.verified += 1
        return None


def _canonical_query(raw: str) -> str:
    """Each name and value decoded, then percent-encoded per RFC 3986; sorted by name, then value."""
    pairs = []
    for item in filter(None, raw.split("&")):
        name, _, value = item.partition("=")
        pairs.append(tuple(urllib.parse.quote(urllib.parse.unquote(x), safe="-_.~") for x in (name, value)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))
