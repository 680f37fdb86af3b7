"""cryokb.toml, the environment and the flags: which wins, and what is refused."""

import logging
import os
from pathlib import Path

import pytest

from kb.config import DEFAULT_EUTILS_URL, ConfigError, find_config, resolve_settings

SECRET = "9f3c0ffee-not-a-real-ncbi-key"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def folder(tmp_path):
    config = write(tmp_path / "cryokb.toml", 'db = "kb/cryo.db"\nemail = "file@example.org"\nbatch_size = 200\n'
                   'eutils_url = "http://127.0.0.1:9/eutils/"\n')
    return config.parent


def test_defaults_without_any_file_or_variable(tmp_path):
    settings = resolve_settings({}, env={}, cwd=tmp_path)
    assert settings.config_file is None
    assert settings.db == tmp_path / "cryokb.db"
    assert (settings.eutils_url, settings.batch_size, settings.email, settings.api_key) == (
        DEFAULT_EUTILS_URL, 500, None, None)
    assert settings.sources["db"] == "default"


def test_the_file_in_the_working_directory_is_read_and_its_paths_are_relative_to_it(folder, tmp_path):
    elsewhere = tmp_path / "cron-cwd"
    elsewhere.mkdir()
    settings = resolve_settings({}, env={"CRYOKB_CONFIG": str(folder / "cryokb.toml")}, cwd=elsewhere)
    assert settings.db == folder / "kb" / "cryo.db"
    here = resolve_settings({}, env={}, cwd=folder)
    assert here.config_file == folder / "cryokb.toml"
    assert (here.email, here.batch_size) == ("file@example.org", 200)


def test_the_environment_overrides_the_file_and_flags_override_both(folder):
    env = {"NCBI_EMAIL": "env@example.org", "CRYOKB_BATCH_SIZE": "50", "CRYOKB_DB": "from-env.db"}
    settings = resolve_settings({}, env=env, cwd=folder)
    assert (settings.email, settings.batch_size, settings.db) == ("env@example.org", 50, folder / "from-env.db")
    assert settings.sources["email"] == "environment NCBI_EMAIL"
    flagged = resolve_settings({"email": "flag@example.org", "batch_size": 7, "db": None}, env=env, cwd=folder)
    assert (flagged.email, flagged.batch_size, flagged.db) == ("flag@example.org", 7, folder / "from-env.db")
    assert flagged.sources["email"] == "flag" and flagged.sources["eutils_url"].startswith("config ")


@pytest.mark.parametrize("name, variable, bad, flag", [
    ("batch_size", "CRYOKB_BATCH_SIZE", "0", 5),
    ("email", "NCBI_EMAIL", "   ", "flag@example.org"),
    ("db", "CRYOKB_DB", "~cryokb-no-such-user/x.db", "flagged.db"),
])
def test_a_flag_wins_over_a_variable_that_would_be_refused(tmp_path, name, variable, bad, flag):
    """The variable was read first, so its bad value stopped a run the flag had settled."""
    settings = resolve_settings({name: flag}, env={variable: bad}, cwd=tmp_path)
    assert settings.sources[name] == "flag"


@pytest.mark.parametrize("value", ["kb/", "kb/.", "/srv/cryokb/.."])
@pytest.mark.parametrize("where", ["environment", "flag"])
def test_a_database_path_ending_in_a_slash_or_a_dot_is_refused_as_a_folder(tmp_path, value, where):
    """As a Path, "kb/" is "kb": refresh made a file of the folder the user meant."""
    with pytest.raises(ConfigError, match="ends with a slash or a dot, so it names a folder"):
        if where == "environment":
            resolve_settings({}, env={"CRYOKB_DB": value}, cwd=tmp_path)
        else:
            resolve_settings({"db": value}, env={}, cwd=tmp_path)


@pytest.mark.parametrize("variable", ["CRYOKB_DB", "CRYOKB_LOG"])
def test_a_blank_path_variable_or_one_with_spaces_around_it_is_refused_naming_it(tmp_path, variable):
    """Refresh stripped the spaces, so CRYOKB_DB=" kb.db" was kb.db to it and " kb.db" to
    import and stats; kept, a stray space in cryokb.toml started a new, empty store."""
    with pytest.raises(ConfigError, match=f"environment {variable}: expected a non-empty string, got ' '"):
        resolve_settings({}, env={variable: " "}, cwd=tmp_path)
    name = {"CRYOKB_DB": "db", "CRYOKB_LOG": "log"}[variable]
    with pytest.raises(ConfigError, match=f"environment {variable}: ' kb.db ' has spaces around it"):
        resolve_settings({}, env={variable: " kb.db "}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="'/srv/cryokb/kb.db ' has spaces around it; remove them"):
        resolve_settings({name: "/srv/cryokb/kb.db "}, env={}, cwd=tmp_path)
    assert getattr(resolve_settings({name: "nightly.db"}, env={}, cwd=tmp_path), name) == tmp_path / "nightly.db"


def test_the_api_key_comes_from_the_environment_or_the_file_never_a_flag(folder):
    settings = resolve_settings({}, env={"NCBI_API_KEY": SECRET}, cwd=folder)
    assert settings.api_key == SECRET
    assert SECRET not in repr(settings) and SECRET not in settings.describe()
    assert "api_key=set (environment NCBI_API_KEY)" in settings.describe()
    with pytest.raises(ConfigError, match="never from a flag"):
        resolve_settings({"api_key": SECRET}, env={}, cwd=folder)


def test_a_key_in_a_file_others_can_read_is_warned_about(tmp_path, caplog):
    config = write(tmp_path / "cryokb.toml", f'api_key = "{SECRET}"\n')
    os.chmod(config, 0o644)
    with caplog.at_level(logging.WARNING, logger="cryokb"):
        settings = resolve_settings({}, env={}, cwd=tmp_path)
    assert settings.api_key == SECRET
    assert "readable by other users: chmod 600" in caplog.text and SECRET not in caplog.text
    caplog.clear()
    os.chmod(config, 0o600)
    with caplog.at_level(logging.WARNING, logger="cryokb"):
        resolve_settings({}, env={}, cwd=tmp_path)
    assert caplog.text == ""


@pytest.mark.parametrize(
    "text, message",
    [
        ('databse = "kb.db"\n', "unknown settings databse"),
        ("batch_size = 0\n", "batch_size: 0 is outside 1..10000"),
        ('batch_size = "many"\n', "batch_size: expected an integer, got 'many'"),
        ("backoff = -1\n", "backoff: expected a number of seconds >= 0"),
        ('email = ""\n', "email: expected a non-empty string"),
        ("db = [1, 2\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_setting(tmp_path, text, message):
    config = write(tmp_path / "cryokb.toml", text)
    with pytest.raises(ConfigError) as error:
        resolve_settings({}, env={}, cwd=tmp_path)
    assert message in str(error.value) and str(config) in str(error.value)


def test_a_file_saved_in_latin_1_is_refused_in_one_line_naming_the_byte(tmp_path):
    config = tmp_path / "cryokb.toml"
    config.write_bytes('db = "kb.db"\n# r\u00e9glages du serveur\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as error:
        resolve_settings({}, env={}, cwd=tmp_path)
    assert str(error.value) == f"{config}: not UTF-8 (byte 0xe9 at offset 16); TOML files are UTF-8"


def test_a_bad_variable_is_refused_naming_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="environment CRYOKB_BATCH_SIZE: expected an integer"):
        resolve_settings({}, env={"CRYOKB_BATCH_SIZE": "lots"}, cwd=tmp_path)


@pytest.mark.parametrize("address", ["nobody", "a@", "a@b", " lab@example.org"])
def test_a_contact_address_that_is_not_one_is_refused_naming_where_it_came_from(tmp_path, address):
    """It was sent to NCBI with every request of a refresh; harvest's --email refuses it too."""
    from kb.config import FlagError

    with pytest.raises(ConfigError, match=f"environment NCBI_EMAIL: '{address}' is not an e-mail address"):
        resolve_settings({}, env={"NCBI_EMAIL": address}, cwd=tmp_path)
    with pytest.raises(FlagError, match=f"--email: '{address}' is not an e-mail address"):
        resolve_settings({"email": address}, env={}, cwd=tmp_path)
    assert resolve_settings({}, env={"NCBI_EMAIL": "m.ruiz+cryokb@imaging.uni-example.de"},
                            cwd=tmp_path).email == "m.ruiz+cryokb@imaging.uni-example.de"
    config = write(tmp_path / "cryokb.toml", f'email = "{address}"\n')
    with pytest.raises(ConfigError, match=f"{config}: email: '{address}' is not an e-mail address"):
        resolve_settings({}, env={}, cwd=tmp_path)


def test_a_config_file_asked_for_by_name_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="--config: no config file at"):
        find_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="CRYOKB_CONFIG: no config file at"):
        find_config(None, env={"CRYOKB_CONFIG": str(tmp_path / "missing.toml")})
    assert find_config(None, env={}, cwd=tmp_path) is None


@pytest.mark.parametrize("where", ["file", "environment", "flag", "config flag"])
def test_a_path_in_the_home_of_a_user_there_is_not_is_refused_naming_the_setting(tmp_path, where):
    """Path.expanduser raised RuntimeError ("Could not determine home directory."): a traceback."""
    nobody = "~cryokb-no-such-user/kb.db"
    with pytest.raises(ConfigError) as error:
        if where == "file":
            write(tmp_path / "cryokb.toml", f'db = "{nobody}"\n')
            resolve_settings({}, env={}, cwd=tmp_path)
        elif where == "environment":
            resolve_settings({}, env={"CRYOKB_DB": nobody}, cwd=tmp_path)
        elif where == "flag":
            resolve_settings({"db": nobody}, env={}, cwd=tmp_path)
        else:
            find_config(nobody, env={})
    assert f"{nobody}: no such user's home folder" in str(error.value)
    assert {"file": "db", "environment": "CRYOKB_DB", "flag": "--db", "config flag": "--config"}[where] in str(
        error.value)
