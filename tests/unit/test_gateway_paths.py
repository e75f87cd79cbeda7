"""The gateway's path normalisation: RFC 3986 dot segments, encoded dots and slashes, merged
slashes; what cannot be normalised safely is refused."""

import pytest

from hub.gateway.paths import BadTarget, normalize_target


@pytest.mark.parametrize("raw, expected", [
    ("/", ("/", "")),
    ("/api/x", ("/api/x", "")),
    ("/api/x/", ("/api/x/", "")),
    ("/api/../admin/delete-all", ("/admin/delete-all", "")),
    ("/api/%2e%2e/raw/x", ("/raw/x", "")),
    ("/api/%2E%2E%2Fraw%5Cx", ("/raw/x", "")),
    ("/api/.%2e/x", ("/x", "")),
    ("//api///x/./y/.", ("/api/x/y/", "")),
    ("/api/x/..", ("/api/", "")),
    ("/p%61tients/%7E1", ("/patients/~1", "")),
    ("/a/%3f%2525/%c3%a9", ("/a/%3F%2525/%C3%A9", "")),  # UTF-8 escapes pass, upper-cased
    ("/api/x?a=../b&c=%2e%2e", ("/api/x", "a=../b&c=%2e%2e")),
    ("/api/x;v=1", ("/api/x;v=1", "")),
])
def test_normalises(raw, expected):
    assert normalize_target(raw) == expected


@pytest.mark.parametrize("raw", [
    "/api/../../etc/passwd", "/..", "/%2e%2e/x", "/a/%2e%2e%2f%2e%2e/b", "/api/..;/admin", "/api/.;x/y",
    "/api/%zz", "/api/%2", "http://other/x", "*", "/a b", "/a#frag", "/a\x00b", "/caf\u00e9", "/a/\udce9",
    # escapes that decode to a control character or to bytes that are not UTF-8 (overlong '.', Latin-1)
    "/api/x%00.json", "/api/a%0d%0aSet-Cookie", "/api/%7f", "/api/%c0%ae%c0%ae/etc", "/api/%e9", "/api/%ed%a0%80",
])
def test_refuses(raw):
    with pytest.raises(BadTarget) as err:
        normalize_target(raw)
    assert "/" not in str(err.value).replace("a path", "")  # a reason, never the path itself
