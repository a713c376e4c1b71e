"""Kafka client properties files: Java-properties syntax, ${env:NAME} values, errors naming the line, and the
refusal of secrets given on the command line."""
import pytest

from bridge.api import ConfigError
from bridge.worker.client_config import is_secret, parse, refuse_secret


def test_properties_are_read_as_kafka_tools_write_them():
    text = "# comment\n! also a comment\n\nbootstrap.servers=b:9093\nsecurity.protocol : SASL_SSL\n" \
           "sasl.password=${env:KAFKA_PASSWORD}\nssl.ca.location = /etc/ca.pem\n"
    assert parse(text, "f", {"KAFKA_PASSWORD": "s3cret"}) == {
        "bootstrap.servers": "b:9093", "security.protocol": "SASL_SSL", "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem"}


def test_bad_lines_and_unset_variables_name_the_line():
    with pytest.raises(ConfigError, match="f line 2: expected key=value"):
        parse("a=1\njust-a-word\n", "f", {})
    with pytest.raises(ConfigError, match=r"f line 1: sasl.password names \$\{env:NOPE\}, which is not set"):
        parse("sasl.password=${env:NOPE}", "f", {})


def test_secrets_are_recognised_and_refused_on_the_command_line():
    assert all(map(is_secret, ["sasl.password", "ssl.key.password", "sasl.jaas.config", "sasl.oauthbearer.client.secret",
                               "ssl.key.pem"]))
    assert not any(map(is_secret, ["session.timeout.ms", "security.protocol", "sasl.username", "ssl.ca.location"]))
    with pytest.raises(ConfigError, match="sasl.password is a secret"):
        refuse_secret("sasl.password", "--consumer-option")
