"""Secret masking keeps the hub's own names: a hyphenated name before a colon (an experiment id
such as ``og-secret``, a service such as ``token-api``) is not a secret key, while keyed secrets,
secret headers and URL credentials are still masked."""

from __future__ import annotations

from hub.masking import mask_secrets


def test_a_hyphenated_name_before_a_colon_is_not_a_secret_key():
    reason = "og-secret: rule 'api-silent' (abort) firing: absence 21 > 20 over 30s"
    assert mask_secrets(reason) == reason
    for text in ("token-api: error rate 0.2", "vault-password: rotated by the injector", "db-auth: 3 errors"):
        assert mask_secrets(text) == text


def test_keyed_secrets_headers_and_url_credentials_are_still_masked():
    assert mask_secrets("secret: hunter2") == "secret: ***"
    assert mask_secrets("token=abc123&x=1") == "token=***&x=1"
    assert mask_secrets("password: pw99, then") == "password: ***, then"
    assert mask_secrets("client_secret=s3 api-key: k1") == "client_secret=*** api-key: ***"
    assert mask_secrets("X-Auth-Token: abc123") == "X-Auth-Token: ***"
    assert mask_secrets("halt http://ops:pw@10.0.0.1:8080/halt?token=T1") == "halt http://***@10.0.0.1:8080/halt?token=***"


def test_a_masked_record_with_arguments_formats_under_fausts_formatter():
    """The worker's log records go through mode's ExtensionFormatter, which wraps record.args that
    are no tuple in one: a masked record must keep a tuple (a None became (None,) and every record
    with arguments was a "Logging error")."""
    import logging

    from mode.utils.logging import ExtensionFormatter

    from hub.masking import MaskingFilter

    record = logging.LogRecord("hub", logging.WARNING, __file__, 1, "halt %s answered %d",
                               ("http://u:pw@127.0.0.1:9/halt?token=abc", 200), None)
    MaskingFilter().filter(record)
    text = ExtensionFormatter(stream=None).format(record)
    assert "answered 200" in text and "pw" not in text and "abc" not in text
