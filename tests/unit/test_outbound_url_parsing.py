"""How an outbound URL (webhook, feed, SNS, link check) is split for the wire: always ASCII."""

from __future__ import annotations

import pytest

from app.errors import InvalidInput
from app.webhooks.safety import parse_target, redirect_location


def test_an_international_name_goes_out_as_its_a_label_and_the_path_escaped() -> None:
    target = parse_target("https://bücher.example/ä?q=ü#section")
    assert target.host == "xn--bcher-kva.example"  # Host header, SNI and DNS all use it
    assert target.host_header == "xn--bcher-kva.example"
    assert target.path == "/%C3%A4?q=%C3%BC"


def test_escapes_already_in_a_url_are_kept_as_they_are() -> None:
    assert parse_target("http://example.org/a%20b/%C3%A9?x=%2F").path == "/a%20b/%C3%A9?x=%2F"


@pytest.mark.parametrize(
    "url",
    [
        "http://exa\x00mple.org/",  # getaddrinfo raised ValueError on the NUL
        "http://example.org/a\x7fb",
        "http://example.org/\x1b[31m",
        "http://exa\u00a0mple.org/",  # IDNA turns it into a space
        "http://" + "é" * 70 + ".example/",  # a label too long for DNS
    ],
)
def test_control_characters_and_impossible_names_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_target(url)


def test_a_redirect_location_keeps_its_bytes_escaped() -> None:
    # Headers are read as latin-1: these are the UTF-8 bytes of "ü" and a latin-1 "é".
    assert redirect_location("/fl\xc3\xbcx.xml") == "/fl%C3%BCx.xml"
    assert redirect_location("/caf\xe9") == "/caf%E9"
    assert redirect_location("https://example.org/a?b=c") == "https://example.org/a?b=c"
