"""Profiles: built-in files, validation messages, the store, reload reasons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chimera_tui.core.errors import ProfileError
from chimera_tui.core.store.profiles import (
    LOAD_TIME_OPTIONS,
    OPTION_SPECS,
    Profile,
    ProfileStore,
    builtin_profiles_dir,
    load_profile,
    reload_reason,
    reload_warning,
    user_profiles_dir,
    validate_options,
)

SWEEP = [f"gpu{g}_ctx{c}_temp{t}" for g in (60, 80, 120) for c in (256, 512, 1024) for t in ("0p6", "0p8")]
TIERS = {
    "tier1_resource_constrained": (60, 256),
    "tier2_balanced": (80, 512),
    "tier3_high_throughput": (120, 1024),
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def profile_file(tmp_path: Path, options: str, name: str = "x") -> Path:
    return write(tmp_path / f"{name}.toml", f'name = "{name}"\n[options]\n{options}\n')


def load_error(path: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return str(info.value)


# --- built-ins ---------------------------------------------------------------------------------


def test_builtins_come_through_bundled_and_match_the_top_level_source() -> None:
    """Found through core/store/bundled.py (the wheel's packed copy, or the checkout's top level);
    the top-level profiles/ folder is the source of truth either way."""
    from chimera_tui.core.store.bundled import bundled_dir

    found = builtin_profiles_dir()
    assert found == bundled_dir("profiles") and found.is_dir()
    source = Path(__file__).resolve().parent.parent / "profiles"

    def contents(folder: Path) -> dict[str, bytes]:
        return {f.name: f.read_bytes() for f in folder.glob("*.toml")}

    assert contents(found) == contents(source) and len(contents(source)) == 22


def test_every_builtin_loads_and_names_match_stems() -> None:
    files = sorted(builtin_profiles_dir().glob("*.toml"))
    assert {f.stem for f in files} == {"baseline_default", *SWEEP, *TIERS}
    assert len(files) == 22
    for f in files:
        profile = load_profile(f, builtin=True)
        assert profile.name == f.stem
        assert profile.builtin and profile.path == f
        assert profile.description


def test_builtin_contents() -> None:
    d = builtin_profiles_dir()
    assert load_profile(d / "baseline_default.toml").options == {}
    p = load_profile(d / "gpu80_ctx512_temp0p8.toml")
    assert p.options == {"num_gpu": 80, "num_ctx": 512, "temperature": 0.8}
    for name, (gpu, ctx) in TIERS.items():
        tier = load_profile(d / f"{name}.toml")
        assert tier.options == {"num_gpu": gpu, "num_ctx": ctx, "temperature": 0.6}
        assert "TR111" in tier.description and "114 tok/s" in tier.description


def test_store_lists_baseline_first_then_by_name(tmp_path: Path) -> None:
    store = ProfileStore(user_dir=tmp_path / "none")
    names = [p.name for p in store.list()]
    assert names[0] == "baseline_default"
    assert names[1:] == sorted(names[1:])
    assert len(names) == 22 and store.errors == []


# --- option specs and validation ---------------------------------------------------------------


def test_option_specs() -> None:
    assert {"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"} == LOAD_TIME_OPTIONS
    assert len(OPTION_SPECS) == 19
    assert OPTION_SPECS["num_gpu"].minimum == -1
    assert OPTION_SPECS["temperature"].expectation() == "a number between 0 and 5"
    assert OPTION_SPECS["num_ctx"].expectation() == "an integer >= 1"
    assert OPTION_SPECS["seed"].expectation() == "an integer"


def test_int_converted_to_float_and_types_kept() -> None:
    opts = validate_options(
        {"temperature": 1, "top_p": 0.5, "num_ctx": 2048, "use_mmap": False, "stop": ["a"], "seed": -7},
        "src",
    )
    assert opts["temperature"] == 1.0 and isinstance(opts["temperature"], float)
    assert isinstance(opts["num_ctx"], int) and opts["use_mmap"] is False and opts["stop"] == ["a"]


@pytest.mark.parametrize(
    ("options", "key", "expected"),
    [
        ('num_ctx = "abc"', "num_ctx", "must be an integer >= 1, got 'abc' (str)"),
        ("num_ctx = true", "num_ctx", "must be an integer >= 1, got True (bool)"),
        ("num_ctx = 2048.0", "num_ctx", "must be an integer >= 1, got 2048.0 (float)"),
        ("num_ctx = 0", "num_ctx", "must be an integer >= 1, got 0 (int)"),
        ("num_gpu = -2", "num_gpu", "must be an integer >= -1"),
        ("temperature = 6", "temperature", "must be a number between 0 and 5, got 6 (int)"),
        ("temperature = true", "temperature", "must be a number between 0 and 5, got True (bool)"),
        ("top_p = 1.5", "top_p", "must be a number between 0 and 1"),
        ("temperature = nan", "temperature", "must be a number between 0 and 5"),
        ("presence_penalty = -3", "presence_penalty", "must be a number between -2 and 2"),
        ("use_mmap = 1", "use_mmap", "must be true or false, got 1 (int)"),
        ('stop = "x"', "stop", "must be a list of strings, got 'x' (str)"),
        ("stop = [1]", "stop", "must be a list of strings"),
    ],
)
def test_option_value_errors(tmp_path: Path, options: str, key: str, expected: str) -> None:
    path = profile_file(tmp_path, options)
    message = load_error(path)
    assert message.startswith(f"{path}: option '{key}' ")
    assert expected in message
    assert "\n" not in message


def test_unknown_option_suggests(tmp_path: Path) -> None:
    path = profile_file(tmp_path, "num_gpus = 60")
    assert load_error(path) == f"{path}: unknown option 'num_gpus' (did you mean 'num_gpu'?)"
    with pytest.raises(ProfileError, match=r"profiles/x.toml: unknown option 'zzz' \(known: num_ctx"):
        validate_options({"zzz": 1}, "profiles/x.toml")


def test_validate_options_message_format() -> None:
    with pytest.raises(ProfileError) as info:
        validate_options({"num_ctx": "abc"}, "profiles/x.toml")
    assert str(info.value) == "profiles/x.toml: option 'num_ctx' must be an integer >= 1, got 'abc' (str)"


# --- file-level errors -------------------------------------------------------------------------


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    assert load_error(path).startswith(f"{path}: cannot read profile")


def test_bad_toml_has_line_info(tmp_path: Path) -> None:
    path = write(tmp_path / "x.toml", 'name = "x"\n[options]\nnum_ctx = \n')
    message = load_error(path)
    assert message.startswith(f"{path}: invalid TOML: ") and "line 3" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[options]\nnum_ctx = 1\n", "missing required key 'name' (a string)"),
        ('name = ""\n', "'name' must not be empty"),
        ("name = 3\n", "'name' must be a string, got 3 (int)"),
        ('name = "../etc"\n', "'name' '../etc' is not valid: use 1-64 letters"),
        ('name = "has space"\n', "'name' 'has space' is not valid"),
        (f'name = "{"a" * 65}"\n', "is not valid"),
        ('name = "x"\noptions = 3\n', "'options' must be a table ([options]), got 3 (int)"),
        ('name = "x"\ndescription = 3\n', "'description' must be a string, got 3 (int)"),
        (
            'name = "x"\ncolour = "red"\n',
            "unknown top-level key 'colour' (allowed: name, description, think, options)",
        ),
        ('name = "x"\nnum_ctx = 512\n', "option 'num_ctx' must be under [options]"),
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "x.toml", text)
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


# --- Profile -----------------------------------------------------------------------------------


def test_profile_methods(tmp_path: Path) -> None:
    p = Profile("p", "d", {"temperature": 1, "num_ctx": 512, "stop": ["\n", 'q"'], "use_mmap": True})
    assert p.options["temperature"] == 1.0
    assert p.load_time_options() == {"num_ctx": 512, "use_mmap": True}
    assert p.option_lines() == [
        ("num_ctx", "512", True),
        ("use_mmap", "true", True),
        ("temperature", "1.0", False),
        ("stop", '["\\n", "q\\""]', False),
    ]
    q = p.with_options(num_ctx=1024, temperature=None, top_k=40)
    assert q.options == {"num_ctx": 1024, "stop": ["\n", 'q"'], "use_mmap": True, "top_k": 40}
    assert p.options["num_ctx"] == 512  # original unchanged
    with pytest.raises(ProfileError, match="option 'num_ctx' must be an integer >= 1"):
        p.with_options(num_ctx=0)
    with pytest.raises(ProfileError, match="'name' 'a/b' is not valid"):
        Profile("a/b")


def test_to_toml_round_trip(tmp_path: Path) -> None:
    p = Profile("rt", "round trip", {"num_ctx": 512, "temperature": 0.7, "stop": ["</s>"], "use_mmap": False})
    path = write(tmp_path / "rt.toml", p.to_toml())
    back = load_profile(path)
    assert (back.name, back.description, back.options) == (p.name, p.description, p.options)
    empty = write(tmp_path / "e.toml", Profile("e").to_toml())
    assert load_profile(empty).options == {}


# --- reload_reason -----------------------------------------------------------------------------


def test_reload_reason() -> None:
    a = Profile("a", options={"num_ctx": 2048, "temperature": 0.6})
    b = Profile("b", options={"num_ctx": 512, "temperature": 0.9})
    assert reload_reason(a, b) == ["num_ctx 2048→512"]
    assert reload_warning(a, b) == "changing num_ctx 2048→512 makes Ollama reload the model"
    assert reload_reason(a, a.with_options(temperature=0.1, seed=3)) == []
    assert reload_warning(a, a) is None
    # missing vs set differs (Ollama falls back to its default)
    assert reload_reason(a, Profile("c")) == ["num_ctx 2048→default"]
    assert reload_reason(None, a) == ["num_ctx default→2048"]
    assert reload_reason(None, Profile("d")) == []
    # num_gpu: -1 (auto) or unset never forces a reload
    g = Profile("g", options={"num_gpu": 60})
    assert reload_reason(g, Profile("h", options={"num_gpu": -1})) == []
    assert reload_reason(g, Profile("h")) == []
    assert reload_reason(None, g) == ["num_gpu default→60"]
    assert reload_reason(g, g.with_options(num_gpu=80, use_mmap=False)) == [
        "num_gpu 60→80",
        "use_mmap default→false",
    ]


# --- store -------------------------------------------------------------------------------------


def test_user_profiles_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHIMERA_TUI_PROFILES", str(tmp_path / "explicit"))
    assert user_profiles_dir() == tmp_path / "explicit"
    monkeypatch.delenv("CHIMERA_TUI_PROFILES")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert user_profiles_dir() == tmp_path / "cfg" / "chimera-tui" / "profiles"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_profiles_dir() == tmp_path / "home" / ".config" / "chimera-tui" / "profiles"
    assert not (tmp_path / "home").exists()


def test_shadowing(tmp_path: Path) -> None:
    user = tmp_path / "user"
    write(user / "tier2_balanced.toml", 'name = "tier2_balanced"\n[options]\nnum_ctx = 4096\n')
    store = ProfileStore(user_dir=user)
    profiles = {p.name: p for p in store.list()}
    assert len(profiles) == 22
    assert profiles["tier2_balanced"].options == {"num_ctx": 4096}
    assert not profiles["tier2_balanced"].builtin
    assert store.get("tier2_balanced").path == user / "tier2_balanced.toml"
    store.delete_user("tier2_balanced")
    assert store.get("tier2_balanced").builtin


def test_corrupt_user_file_reported_not_fatal(tmp_path: Path) -> None:
    user = tmp_path / "user"
    bad = write(user / "broken.toml", "name = \n")
    wrong = write(user / "other.toml", 'name = "mismatch"\n')
    store = ProfileStore(user_dir=user)
    assert len(store.list()) == 22
    errors = dict(store.errors)
    assert set(errors) == {bad, wrong}
    assert "invalid TOML" in errors[bad]
    assert "must match the file name" in errors[wrong]
    with pytest.raises(ProfileError, match=r"profile 'broken' is invalid: .*invalid TOML"):
        store.get("broken")


def test_get_unknown_and_by_path(tmp_path: Path) -> None:
    store = ProfileStore(builtin_dir=tmp_path / "b", user_dir=tmp_path / "u")
    write(tmp_path / "b" / "baseline_default.toml", 'name = "baseline_default"\n')
    write(tmp_path / "u" / "mine.toml", 'name = "mine"\n')
    with pytest.raises(ProfileError) as info:
        store.get("nope")
    assert str(info.value) == "unknown profile 'nope'; available: baseline_default, mine"
    loose = write(tmp_path / "elsewhere" / "loose.toml", 'name = "loose"\n[options]\ntop_k = 5\n')
    assert store.get(str(loose)).options == {"top_k": 5}


def test_save_delete_round_trip(tmp_path: Path) -> None:
    user = tmp_path / "deep" / "user"
    store = ProfileStore(user_dir=user)
    p = Profile("mine", "my profile", {"num_ctx": 1024, "temperature": 0.2})
    path = store.save_user(p)
    assert path == user / "mine.toml"
    assert [f.name for f in user.iterdir()] == ["mine.toml"]  # no temp file left
    got = store.get("mine")
    assert (got.options, got.description, got.builtin) == (p.options, p.description, False)
    store.save_user(p.with_options(num_ctx=2048))  # overwrite
    assert store.get("mine").options["num_ctx"] == 2048
    store.delete_user("mine")
    assert not path.exists()
    with pytest.raises(ProfileError, match="unknown user profile 'mine'"):
        store.delete_user("mine")


def test_builtin_delete_refused(tmp_path: Path) -> None:
    store = ProfileStore(user_dir=tmp_path / "user")
    with pytest.raises(ProfileError, match="'tier1_resource_constrained' is built-in and read-only"):
        store.delete_user("tier1_resource_constrained")
    assert (builtin_profiles_dir() / "tier1_resource_constrained.toml").exists()


def test_core_profiles_does_not_import_textual() -> None:
    code = "import sys, chimera_tui.core.store.profiles; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
