"""The node's settings from the environment: LPD (with the address it announces) and JBA ones,
with a clear error for each bad value."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from node.config import JbaDevice, NodeConfig
from node.errors import ConfigError


def test_defaults_put_lpd_on_5515_and_collect_no_jba(tmp_path: Path) -> None:
    config = NodeConfig.from_env({"PF_HOME": str(tmp_path)})
    assert config.lpd_listen == "127.0.0.1:5515"
    assert (config.lpd_host, config.lpd_port) == ("127.0.0.1", 5515)
    assert config.lpd_unknown_user == "refuse"
    assert config.lpd_max_job_bytes == 4 << 30 and config.lpd_max_control_bytes == 16 << 10
    assert config.lpd_spool_dir == config.home / "lpd" != config.spool_dir
    assert config.jba_devices == () and config.jba_interval == 300.0


def test_lpd_and_jba_settings_are_read(tmp_path: Path) -> None:
    secret = tmp_path / "jba.pw"
    secret.write_text("s3cret\n")
    config = NodeConfig.from_env(
        {
            "PF_HOME": str(tmp_path),
            "PF_NODE_LPD_LISTEN": "0.0.0.0:515",
            "PF_NODE_LPD_UNKNOWN_USER": "Park",
            "PF_NODE_LPD_MAX_JOB": "100M",
            "PF_NODE_LPD_MAX_CONTROL": "8k",
            "PF_NODE_LPD_IDLE_TIMEOUT": "90s",
            "PF_NODE_LPD_MAX_PER_PEER": "4",
            "PF_NODE_LPD_HOLD": "2h",
            "PF_NODE_JBA_DEVICES": "lobby=https://10.0.0.5/jba.csv, floor2=https://xrx2:8443/log",
            "PF_NODE_JBA_INTERVAL": "1m",
            "PF_NODE_JBA_USER": "reader",
            "PF_NODE_JBA_PASSWORD_FILE": str(secret),
        }
    )
    assert (config.lpd_host, config.lpd_port, config.lpd_unknown_user) == ("0.0.0.0", 515, "park")
    assert config.lpd_max_job_bytes == 100 << 20 and config.lpd_max_control_bytes == 8 << 10
    assert config.lpd_idle_timeout == 90 and config.lpd_max_connections_per_peer == 4
    assert config.lpd_hold_seconds == 7200
    assert config.jba_devices == (
        JbaDevice("lobby", "https://10.0.0.5/jba.csv"),
        JbaDevice("floor2", "https://xrx2:8443/log"),
    )
    assert (config.jba_interval, config.jba_user, config.jba_password) == (60, "reader", "s3cret")
    assert "s3cret" not in repr(config)
    assert NodeConfig.from_env({"PF_NODE_LPD_LISTEN": "off"}).lpd_listen == ""


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("PF_NODE_LPD_LISTEN", "515", "is not host:port"),
        ("PF_NODE_LPD_UNKNOWN_USER", "accept", "use one of refuse, park"),
        ("PF_NODE_LPD_MAX_JOB", "lots", "not a positive size"),
        ("PF_NODE_LPD_MAX_JOB", "0", "not a positive size"),
        ("PF_NODE_LPD_HOLD", "-1s", ""),
        ("PF_NODE_JBA_DEVICES", "lobby=http://10.0.0.5/jba.csv", "over HTTPS only"),
        ("PF_NODE_JBA_DEVICES", "https://10.0.0.5/jba.csv", "NAME=https://"),
        ("PF_NODE_JBA_DEVICES", "a=https://x/1,a=https://y/2", "used twice"),
        ("PF_NODE_JBA_PASSWORD_FILE", "/nonexistent/pw", "cannot read"),
        ("PF_NODE_LPD_URI", "lpd://node.lan", "PF_NODE_LPD_URI: 'lpd://node.lan' is not lpr://"),
        ("PF_NODE_LPD_URI", "node.lan:515", "is not lpr://host[:port]"),
        ("PF_NODE_LPD_URI", "lpr://node.lan/secure", "is not lpr://host[:port]"),
        ("PF_NODE_LPD_URI", "lpr://node.lan/", "is not lpr://host[:port]"),
        ("PF_NODE_LPD_URI", "lpr://user@node.lan", "is not lpr://host[:port]"),
        ("PF_NODE_LPD_URI", "lpr://node.lan:99999", "is not lpr://host[:port]"),
        ("PF_NODE_LPD_URI", "lpr://[not-v6]:515", "is not lpr://host[:port]"),
        ("PF_NODE_LPD_URI", "lpr://" + "n" * 300, "PF_NODE_LPD_URI: an lpr:// address is at most"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as refused:
        NodeConfig.from_env({name: value})
    assert needle in refused.value.message


def test_the_announced_lpd_address_is_derived_from_a_specific_listen_address() -> None:
    def announced(listen: str) -> str:
        return NodeConfig.from_env({"PF_NODE_LPD_LISTEN": listen}).lpd_uri

    assert NodeConfig.from_env({}).lpd_uri == "lpr://127.0.0.1:5515"
    assert announced("10.1.2.3:515") == "lpr://10.1.2.3", "515 is LPD's own port: left out"
    assert announced("print-node.acme.lan:5515") == "lpr://print-node.acme.lan:5515"
    assert announced("[fd00::7]:515") == "lpr://[fd00::7]"
    # Any free port: which one is known only once the server listens, so nothing is announced.
    assert announced("127.0.0.1:0") == ""


@pytest.mark.parametrize("listen", ["0.0.0.0:515", "[::]:515", ":::5515"])
def test_on_every_address_the_node_announces_its_own_name(
    listen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": "node7.site.acme.lan")
    port = listen.rpartition(":")[2]
    expected = "lpr://node7.site.acme.lan" + ("" if port == "515" else f":{port}")
    assert NodeConfig.from_env({"PF_NODE_LPD_LISTEN": listen}).lpd_uri == expected


def test_an_explicit_lpd_address_wins_and_off_announces_nothing() -> None:
    behind_nat = {"PF_NODE_LPD_LISTEN": "0.0.0.0:515", "PF_NODE_LPD_URI": " lpr://print.acme.com "}
    assert NodeConfig.from_env(behind_nat).lpd_uri == "lpr://print.acme.com"
    assert NodeConfig.from_env({"PF_NODE_LPD_URI": "LPR://[::1]:5515"}).lpd_uri == (
        "lpr://[::1]:5515"
    )
    assert NodeConfig.from_env({"PF_NODE_LPD_URI": "off"}).lpd_uri == ""
    # No LPD server, nothing to announce.
    assert NodeConfig.from_env({"PF_NODE_LPD_LISTEN": "off"}).lpd_uri == ""
    with pytest.raises(ConfigError, match="PF_NODE_LPD_URI is set but the LPD server is off"):
        NodeConfig.from_env({"PF_NODE_LPD_LISTEN": "off", "PF_NODE_LPD_URI": "lpr://n.lan"})


def test_a_machine_name_that_is_no_host_name_asks_for_an_explicit_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": "bad name!")
    with pytest.raises(ConfigError, match="set PF_NODE_LPD_URI=lpr://HOST"):
        NodeConfig.from_env({"PF_NODE_LPD_LISTEN": "0.0.0.0:515"})
