"""Webhook signature checks for every scheme (voicereplay.signatures), with the clock injected.

The Retell side is checked against the reference test vector and against bodies signed by
retell-sdk's own ``retell.lib.webhook_auth`` (so a drift from the official SDK shows here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from retell.lib import webhook_auth as retell_sdk

from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.signatures import (
    VapiAuth,
    WebhookAuthError,
    retell_signature,
    verify_retell,
    verify_vapi,
)

NOW = 1_700_000_000.0  # seconds; the injected clock
BODY = b'{"message":{"type":"end-of-call-report","call":{"id":"c1"}}}'

# -- Retell -----------------------------------------------------------------------------------
VECTOR = ("v=1700000000000,"
          "d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e")


def test_the_retell_reference_vector_is_signed_and_verified() -> None:
    body = '{"event":"call_ended"}'
    assert retell_signature(body, "test-api-key", 1700000000000) == VECTOR
    verify_retell("test-api-key", body.encode(), {"x-retell-signature": VECTOR}, now=NOW)


def test_bodies_signed_by_retell_sdk_pass_and_tampered_ones_fail() -> None:
    body = '{"event":"call_analyzed","call":{"call_id":"r1","note":"café ☕"}}'
    stamp = int(NOW * 1000) - 90_000
    signature = retell_sdk.symmetric["sign"](body, "key_abc", stamp)
    # retell-sdk's own verify agrees with the clock we inject
    assert retell_sdk.symmetric["verify"](body, "key_abc", signature,
                                         {"timestamp": int(NOW * 1000)})
    verify_retell("key_abc", body.encode(), {"X-Retell-Signature": signature}, now=NOW)
    tampered = body.replace("r1", "r2").encode()
    with pytest.raises(WebhookAuthError, match="does not match"):
        verify_retell("key_abc", tampered, {"x-retell-signature": signature}, now=NOW)
    with pytest.raises(WebhookAuthError, match="does not match"):
        verify_retell("other-key", body.encode(), {"x-retell-signature": signature}, now=NOW)


@pytest.mark.parametrize("offset_ms, ok", [(-300_000, True), (300_000, True),
                                           (-300_001, False), (300_001, False)])
def test_retell_signatures_hold_for_five_minutes(offset_ms: int, ok: bool) -> None:
    stamp = int(NOW * 1000) + offset_ms
    signature = retell_sdk.symmetric["sign"]("{}", "k", stamp)
    sdk = retell_sdk.symmetric["verify"]("{}", "k", signature, {"timestamp": int(NOW * 1000)})
    assert sdk is ok  # the same window as the SDK
    if ok:
        verify_retell("k", b"{}", {"x-retell-signature": signature}, now=NOW)
    else:
        with pytest.raises(WebhookAuthError, match="away from now"):
            verify_retell("k", b"{}", {"x-retell-signature": signature}, now=NOW)


def test_a_replayed_retell_delivery_with_its_old_signature_is_refused() -> None:
    signature = retell_signature("{}", "k", int(NOW * 1000))
    verify_retell("k", b"{}", {"x-retell-signature": signature}, now=NOW)
    with pytest.raises(WebhookAuthError, match="away from now"):
        verify_retell("k", b"{}", {"x-retell-signature": signature}, now=NOW + 3600)


@pytest.mark.parametrize("headers, reason", [
    ({}, "missing"),
    ({"x-retell-signature": ""}, "not v=<ms>,d=<hex>"),
    ({"x-retell-signature": "v=1700000000000,d=XYZ"}, "not v=<ms>,d=<hex>"),
    ({"x-retell-signature": "d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e"},
     "not v=<ms>,d=<hex>"),
    ({"x-retell-signature": VECTOR.replace("d=0", "d=1")}, "does not match"),
    # a SHA-512 digest of the same input is the wrong algorithm: refused by its shape
    ({"x-retell-signature": "v=1700000000000,d=" + hmac.new(
        b"test-api-key", b'{"event":"call_ended"}1700000000000', hashlib.sha512).hexdigest()},
     "not v=<ms>,d=<hex>"),
])
def test_bad_or_missing_retell_signatures_are_refused(headers: dict[str, str],
                                                      reason: str) -> None:
    with pytest.raises(WebhookAuthError, match=reason) as caught:
        verify_retell("test-api-key", b'{"event":"call_ended"}', headers, now=NOW)
    assert caught.value.http_status == 401
    assert "test-api-key" not in str(caught.value)


# -- Vapi: shared secret and bearer -----------------------------------------------------------
def test_the_vapi_shared_secret_is_compared_in_its_header() -> None:
    auth = VapiAuth("secret", "s3cret")
    verify_vapi(auth, BODY, {"x-vapi-secret": "s3cret"})
    for headers, reason in (({}, "missing the X-Vapi-Secret"),
                            ({"X-Vapi-Secret": "wrong"}, "does not match"),
                            ({"X-Vapi-Secret": "s3cre"}, "does not match")):
        with pytest.raises(WebhookAuthError, match=reason) as caught:
            verify_vapi(auth, BODY, headers)
        assert "s3cret" not in str(caught.value)
    custom = VapiAuth("secret", "s3cret", header="X-Hook-Key")
    verify_vapi(custom, BODY, {"x-hook-key": "s3cret"})
    with pytest.raises(WebhookAuthError, match="missing the X-Hook-Key"):
        verify_vapi(custom, BODY, {"X-Vapi-Secret": "s3cret"})


def test_the_vapi_bearer_token_needs_the_bearer_prefix() -> None:
    auth = VapiAuth("bearer", "tok")
    verify_vapi(auth, BODY, {"Authorization": "Bearer tok"})
    verify_vapi(auth, BODY, {"authorization": "bearer tok"})
    for value in ("tok", "Bearer nope", "Basic tok"):
        with pytest.raises(WebhookAuthError, match="does not match"):
            verify_vapi(auth, BODY, {"Authorization": value})
    with pytest.raises(WebhookAuthError, match="missing the Authorization"):
        verify_vapi(auth, BODY, {})


# -- Vapi: HMAC -------------------------------------------------------------------------------
def _hmac_headers(secret: bytes, payload: bytes, algorithm: str = "sha256",
                  stamp: str = str(int(NOW))) -> dict[str, str]:
    digest = hmac.new(secret, payload, algorithm).hexdigest()
    return {"x-signature": digest, "x-timestamp": stamp}


def test_vapi_hmac_defaults_sign_timestamp_dot_body_in_hex() -> None:
    auth = VapiAuth("hmac", "hk")
    stamp = str(int(NOW))
    headers = _hmac_headers(b"hk", stamp.encode() + b"." + BODY)
    verify_vapi(auth, BODY, headers, now=NOW)
    with pytest.raises(WebhookAuthError, match="does not match"):  # tampered body
        verify_vapi(auth, BODY.replace(b"c1", b"c2"), headers, now=NOW)
    with pytest.raises(WebhookAuthError, match="does not match"):  # wrong key
        verify_vapi(VapiAuth("hmac", "other"), BODY, headers, now=NOW)
    with pytest.raises(WebhookAuthError, match="missing the x-signature"):
        verify_vapi(auth, BODY, {"x-timestamp": stamp}, now=NOW)
    with pytest.raises(WebhookAuthError, match="missing the x-timestamp"):
        verify_vapi(auth, BODY, {"x-signature": headers["x-signature"]}, now=NOW)
    for stamp in ("yesterday", "nan", "inf", "-inf"):  # nan would pass any skew check
        with pytest.raises(WebhookAuthError, match="not a number"):
            verify_vapi(auth, BODY, {**headers, "x-timestamp": stamp}, now=NOW)


def test_vapi_hmac_refuses_old_and_future_timestamps() -> None:
    auth = VapiAuth("hmac", "hk")
    for offset, ok in ((-300, True), (300, True), (-301, False), (301, False)):
        stamp = str(int(NOW) + offset)
        headers = _hmac_headers(b"hk", stamp.encode() + b"." + BODY, stamp=stamp)
        if ok:
            verify_vapi(auth, BODY, headers, now=NOW)
        else:
            with pytest.raises(WebhookAuthError, match="away from now"):
                verify_vapi(auth, BODY, headers, now=NOW)
    # a replay of a good delivery an hour later: same headers, refused
    stamp = str(int(NOW))
    headers = _hmac_headers(b"hk", stamp.encode() + b"." + BODY)
    with pytest.raises(WebhookAuthError, match="away from now"):
        verify_vapi(auth, BODY, headers, now=NOW + 3600)
    # milliseconds work too, and the window is configurable
    ms = str(int(NOW * 1000) - 20_000)
    tight = VapiAuth("hmac", "hk", max_skew=10)
    headers = _hmac_headers(b"hk", ms.encode() + b"." + BODY, stamp=ms)
    verify_vapi(auth, BODY, headers, now=NOW)
    with pytest.raises(WebhookAuthError, match="at most 10 s"):
        verify_vapi(tight, BODY, headers, now=NOW)


def test_vapi_hmac_sha512_base64_prefix_and_custom_format() -> None:
    auth = VapiAuth("hmac", "hk", algorithm="sha512", encoding="base64", prefix="sha512=",
                    signature_header="X-Vapi-Signature", timestamp_header="X-Sent-At",
                    payload_format="{body}:{timestamp}")
    stamp = str(int(NOW))
    digest = hmac.new(b"hk", BODY + b":" + stamp.encode(), "sha512").digest()
    good = {"x-vapi-signature": "sha512=" + base64.b64encode(digest).decode(),
            "x-sent-at": stamp}
    verify_vapi(auth, BODY, good, now=NOW)
    with pytest.raises(WebhookAuthError, match="does not match"):  # prefix missing
        verify_vapi(auth, BODY, {**good, "x-vapi-signature": base64.b64encode(digest).decode()},
                    now=NOW)
    # the right key and input under the wrong algorithm (sha256) is refused
    wrong = hmac.new(b"hk", BODY + b":" + stamp.encode(), "sha256").digest()
    with pytest.raises(WebhookAuthError, match="HMAC-SHA512, base64"):
        verify_vapi(auth, BODY, {**good, "x-vapi-signature": "sha512=" +
                                 base64.b64encode(wrong).decode()}, now=NOW)


def test_vapi_hmac_over_the_body_only_needs_no_timestamp() -> None:
    auth = VapiAuth("hmac", "hk", payload_format="{body}", prefix="sha256=",
                    signature_header="x-vapi-signature")
    good = {"x-vapi-signature": "sha256=" + hmac.new(b"hk", BODY, "sha256").hexdigest()}
    verify_vapi(auth, BODY, good, now=NOW)


def test_unsupported_settings_are_refused_when_read() -> None:
    with pytest.raises(ValueError, match="unsupported HMAC algorithm 'md5'"):
        VapiAuth("hmac", "hk", algorithm="md5")
    with pytest.raises(ValueError, match="empty"):
        VapiAuth("secret", "")
    with pytest.raises(ValueError, match="not method, url"):
        VapiAuth("hmac", "hk", payload_format="{method}.{url}.{body}")


# -- configuration ----------------------------------------------------------------------------
def test_webhook_settings_come_from_the_environment() -> None:
    base = {"VOICEREPLAY_HOME": "/tmp/vr-hooks"}
    plain = Settings.from_env(base)
    assert plain.vapi_webhook is None and plain.retell_webhook_key is None
    settings = Settings.from_env({
        **base, "VOICEREPLAY_VAPI_WEBHOOK_SECRET": "hk", "VOICEREPLAY_VAPI_WEBHOOK_AUTH": "HMAC",
        "VOICEREPLAY_VAPI_WEBHOOK_HMAC_ALGORITHM": "sha512",
        "VOICEREPLAY_VAPI_WEBHOOK_HMAC_ENCODING": "base64",
        "VOICEREPLAY_VAPI_WEBHOOK_HMAC_PREFIX": "sha512=",
        "VOICEREPLAY_VAPI_WEBHOOK_HMAC_SIGNATURE_HEADER": "x-sig",
        "VOICEREPLAY_VAPI_WEBHOOK_HMAC_TIMESTAMP_HEADER": "x-ts",
        "VOICEREPLAY_VAPI_WEBHOOK_HMAC_PAYLOAD_FORMAT": "{body}",
        "VOICEREPLAY_VAPI_WEBHOOK_HMAC_MAX_SKEW": "60", "RETELL_API_KEY": "rk"})
    assert settings.vapi_webhook == VapiAuth(
        "hmac", "hk", algorithm="sha512", encoding="base64", prefix="sha512=",
        signature_header="x-sig", timestamp_header="x-ts", payload_format="{body}",
        max_skew=60)
    assert settings.retell_webhook_key == "rk"
    assert "hk" not in repr(settings) and "rk" not in repr(settings)
    own = Settings.from_env({**base, "RETELL_API_KEY": "rk",
                             "VOICEREPLAY_RETELL_WEBHOOK_KEY": "webhook-key"})
    assert own.retell_webhook_key == "webhook-key"
    secret = Settings.from_env({**base, "VOICEREPLAY_VAPI_WEBHOOK_SECRET": "s"})
    assert secret.vapi_webhook == VapiAuth("secret", "s")


@pytest.mark.parametrize("env, names", [
    ({"VOICEREPLAY_VAPI_WEBHOOK_AUTH": "oauth"}, "VOICEREPLAY_VAPI_WEBHOOK_AUTH"),
    ({"VOICEREPLAY_VAPI_WEBHOOK_SECRET": "s", "VOICEREPLAY_VAPI_WEBHOOK_AUTH": "hmac",
      "VOICEREPLAY_VAPI_WEBHOOK_HMAC_ALGORITHM": "sha1"}, "md5|sha1"),
    ({"VOICEREPLAY_VAPI_WEBHOOK_SECRET": "s",
      "VOICEREPLAY_VAPI_WEBHOOK_HMAC_MAX_SKEW": "-1"}, "MAX_SKEW"),
])
def test_bad_webhook_settings_are_config_errors(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        Settings.from_env({"VOICEREPLAY_HOME": "/tmp/vr-hooks", **env})
