"""Run configuration: nested dictionaries read from YAML, checked against a schema.

Every key a run can use is listed in :data:`DEFAULTS` with its default value, so
a typo in a YAML file or in ``--set`` is an error rather than a silently ignored
setting.  The values of :data:`DEFAULTS` are the Cora-tuned ones also written
out, with comments, in ``configs/cora.yaml`` (a test keeps the two equal).

The repository's top-level ``configs/`` is installed inside the package as
``graphssl/configs`` (``setup.cfg``), so :func:`config_for_dataset` finds the
same files in a source checkout, an editable install and a wheel.  The names
of the datasets live here too, without importing torch, so that every command
checks them with :func:`dataset_name` before any work starts.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import stat
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .errors import GraphSSLError, first_line

DEFAULTS: dict[str, Any] = {
    "method": "bgrl",
    "data": {"normalize_features": False},
    "encoder": {
        "layers": [512, 256],
        "norm": "none",
        "activation": "prelu",
        "last_activation": True,
        "weight_standardization": False,
    },
    "predictor": {"hidden": 512},
    "augment": {
        "drop_edge_1": 0.6,
        "drop_edge_2": 0.0,
        "mask_feature_1": 0.4,
        "mask_feature_2": 0.2,
    },
    "optim": {"steps": 1000, "lr": 1.004e-3, "weight_decay": 1.0e-5, "warmup_steps": 50, "lr_scaling": "linear"},
    "ema": {"start": 0.99, "end": 1.0},
    "grace": {"temperature": 0.4, "projection_hidden": 128, "chunk_size": 1024},
    "vicreg": {"invariance_weight": 25.0, "variance_weight": 25.0, "covariance_weight": 1.0,
               "expander_layers": [512, 512, 512]},
    "cca_ssg": {"lambd": 0.001},
    "werank": {"alpha": 0.02355, "squared": True, "scope": "encoder", "schedule": "constant", "target_fraction": 0.7,
               "adapt_factor": 1.25, "alpha_min": 1.0e-4, "alpha_max": 1.0},
    "probe": {"protocol": "lbfgs", "l2_grid": [1.0e-6, 1.0e-5, 1.0e-4, 1.0e-3, 1.0e-2, 1.0e-1], "max_iter": 200},
    "train": {"seed": 0, "log_every": 10, "checkpoint_every": 100, "spectra_every": 50, "probe_every": 0,
              "tensorboard": False, "batch_size": 0, "num_neighbors": [10, 10], "precision": "32"},
}

# The self-supervised objectives, as graphssl.model.METHODS builds them (named here without importing torch).
METHOD_NAMES = ("bgrl", "grace", "vicreg", "cca-ssg")
# The toy's self-supervised losses (graphssl.toy), named here so that the command's parser is built without torch.
TOY_LOSSES = ("infonce", "vicreg", "ema")
# What werank.scope may say WERank regularizes. (Not "werank.on": YAML 1.1, as PyYAML reads it, takes a key
# "on" for the boolean true.)
WERANK_SCOPES = ("encoder", "encoder+head")
# How WERank's coefficient moves during training (graphssl.werank_schedule).
WERANK_SCHEDULES = ("constant", "adaptive")
NORMS = ("batch", "layer", "none")
ACTIVATIONS = ("prelu", "relu", "elu", "gelu")
PROBE_PROTOCOLS = ("lbfgs", "bgrl-official")
DATASETS = ("cora", "citeseer", "pubmed", "ogbn-arxiv", "synthetic-arxiv")
# train.precision (graphssl.precision): float32, bfloat16 autocast, TF32 matrix products on CUDA.
PRECISIONS = ("32", "bf16-mixed", "tf32")


def map_leaves(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """A copy of ``value`` (a config, or a part of one: dicts and lists) with ``leaf`` applied to every other value.

    Example:
        >>> map_leaves({"alpha": [1, 2], "name": "x"}, lambda v: v * 2)
        {'alpha': [2, 4], 'name': 'xx'}
    """
    if isinstance(value, dict):
        return {key: map_leaves(item, leaf) for key, item in value.items()}
    if isinstance(value, list):
        return [map_leaves(item, leaf) for item in value]
    return leaf(value)


# YAML 1.1 (PyYAML) reads "1e-3" as a string; scientific notation without a dot is a number here.
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _exponent_as_float(value: Any) -> Any:
    return float(value) if isinstance(value, str) and _EXPONENT_NUMBER.match(value) else value


# Bounds no file of settings comes near (a config has about 60 values, nested 3 deep). Without the first, a few
# aliases nested inside each other (each repeating the one before nine times) stand for billions of values.
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 50


def _check_tree(root: yaml.Node | None, where: str) -> None:
    """Refuse a composed YAML tree that is no file of settings, before anything is built from it: a key written
    twice in one mapping (PyYAML would silently keep the last), an alias inside its own anchor, nesting deeper
    than :data:`MAX_YAML_DEPTH`, or more than :data:`MAX_YAML_VALUES` values once its aliases are written out.
    Each node is walked once, however many aliases name it."""
    sizes: dict[int, int] = {}  # a node's values with its aliases written out, by id(node)
    above: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in above:
            raise GraphSSLError(f"{where}: a YAML alias refers to the value it is inside; write the values out")
        if id(node) in sizes:
            return sizes[id(node)]
        if len(above) >= MAX_YAML_DEPTH:
            raise _too_deep(where)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        raise GraphSSLError(f"{where}: key '{key.value}' is written twice in one mapping (again at "
                                            f"line {key.start_mark.line + 1}); keep one")
                    keys.add(key.value)
                children += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        above.add(id(node))
        total = 1 + sum(map(size, children))
        above.discard(id(node))
        if total > MAX_YAML_VALUES:
            raise GraphSSLError(f"{where}: more than {MAX_YAML_VALUES:,} values once its YAML aliases are written "
                                f"out, far more than any settings; use fewer aliases inside aliases")
        sizes[id(node)] = total
        return total

    if root is not None:
        size(root)


def _too_deep(where: str) -> GraphSSLError:
    return GraphSSLError(f"{where}: values nested more than {MAX_YAML_DEPTH} deep, far deeper than any setting; "
                         f"flatten them")


def read_yaml(text: str, where: str) -> Any:
    """``text`` read as ``yaml.safe_load`` reads it (its loader), scientific notation without a dot (``1e-3``) as a
    number.

    Returns:
        The value. Malformed YAML, a value Python cannot hold, or a tree :func:`_check_tree` refuses (a key
        written twice in one mapping, an alias inside its own anchor, nesting or aliases beyond any settings)
        is a :class:`GraphSSLError` naming ``where``.

    Example:
        >>> read_yaml("optim: {lr: 1e-3}", "my.yaml")
        {'optim': {'lr': 0.001}}
    """
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # yaml.safe_load's own two halves, the node tree checked between them
        node = loader.get_single_node()
        _check_tree(node, where)
        value = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GraphSSLError(f"{where}: malformed YAML{at}; fix the syntax (see configs/cora.yaml)") from None
    except RecursionError:  # nesting too deep for PyYAML's own reader, before the tree could be checked
        raise _too_deep(where) from None
    # PyYAML's constructors fail in their own ways on a tagged or odd value (!!int '', !!bool maybe, a date
    # 2024-13-45, a 5000-digit int).
    except (ValueError, IndexError, KeyError, AttributeError, OverflowError, TypeError) as err:
        raise GraphSSLError(f"{where}: cannot read a value ({first_line(err, 60)}); quote it, or write it another "
                            f"way") from None
    finally:
        if loader is not None:
            loader.dispose()
    return map_leaves(value, lambda leaf: _whole_number_in_range(_exponent_as_float(leaf), where))


def _whole_number_in_range(value: Any, where: str) -> Any:
    # No setting counts beyond 64 bits; a longer int (hex and octal have no digit limit) breaks the checks after.
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        raise GraphSSLError(f"{where}: a whole number of {value.bit_length()} bits, beyond any setting; write a "
                            f"smaller one")
    return value


MAX_YAML_BYTES = 1 << 20


def read_yaml_file(path: str | Path, flag: str, expected: str) -> Any:
    """The YAML file at ``path``, read with :func:`read_yaml`.

    ``flag`` and ``expected`` word the error: a file that is missing, unreadable, not UTF-8 or malformed is
    one :class:`GraphSSLError` naming ``flag``, the file and the problem, and asking for ``expected``.

    Returns:
        The value the file holds.

    Example:
        >>> read_yaml_file("no-such.yaml", "--config", "an existing YAML file")
        Traceback (most recent call last):
        ...
        graphssl.errors.GraphSSLError: --config no-such.yaml: cannot read it (No such file or directory); pass an existing YAML file
    """
    return read_yaml(yaml_file_text(path, flag, expected), str(path))


def yaml_file_text(path: str | Path, flag: str, expected: str) -> str:
    """The text of the YAML file at ``path``, for a caller that needs the text itself as well as its value
    (:func:`read_yaml_file` words the errors the same way).

    Returns:
        The file's text; a file that is missing, unreadable, not a regular file, megabytes long or not UTF-8 is
        a :class:`GraphSSLError`.

    Example:
        >>> yaml_file_text("no-such.yaml", "--config", "an existing YAML file")
        Traceback (most recent call last):
        ...
        graphssl.errors.GraphSSLError: --config no-such.yaml: cannot read it (No such file or directory); pass an existing YAML file
    """
    path = Path(path)
    try:
        info = path.stat()
        # A device such as /dev/zero never ends; no config or search space is megabytes long.
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_YAML_BYTES:
            raise GraphSSLError(f"{flag} {path}: " + ("not a regular file" if not stat.S_ISREG(info.st_mode) else
                                f"{info.st_size} bytes, too large for a YAML file of settings") + f"; pass {expected}")
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise GraphSSLError(f"{flag} {path}: cannot read it ({err.strerror}); pass {expected}"
                            f"{_shipped_hint(path)}") from None
    except UnicodeDecodeError as err:
        raise GraphSSLError(f"{flag} {path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                            f"{err.start}); save it as UTF-8, or pass {expected}") from None
    return text


def _shipped_hint(path: Path) -> str:
    # README's examples say configs/...: run from elsewhere, point at the copy graphssl itself carries.
    if path.is_absolute() or path.parts[:1] != ("configs",):
        return ""
    try:
        shipped = config_dir().joinpath(*path.parts[1:])
    except GraphSSLError:
        return ""
    return f" (graphssl's own copy is {shipped})" if shipped.is_file() else ""


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


KNOWN_KEYS = tuple(_flatten(DEFAULTS))


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two configs (a key only one of them has included).

    Returns:
        The keys, sorted.

    Example:
        >>> config_differences({"optim": {"steps": 50, "lr": 0.1}}, {"optim": {"steps": 400, "lr": 0.1}})
        ['optim.steps']
    """
    flat_a, flat_b, missing = _flatten(a), _flatten(b), object()
    return sorted(k for k in flat_a.keys() | flat_b.keys() if flat_a.get(k, missing) != flat_b.get(k, missing))


# What other libraries and papers call some of graphssl's keys: names that string similarity alone would not
# match ('optim.learning_rate' is closer to 'optim.lr_scaling' than to 'optim.lr').
_OTHER_NAMES = {"learning_rate": "lr", "epochs": "steps", "num_epochs": "steps", "max_epochs": "steps",
               "tau": "temperature", "lambda": "lambd", "lam": "lambd"}


def unknown_key_error(key: str, where: str) -> GraphSSLError:
    """The error for an unknown dotted key, suggesting the closest known one.

    Returns:
        A :class:`GraphSSLError` to raise.

    Example:
        >>> str(unknown_key_error("optim.lrr", "--set"))
        "--set: unknown config key 'optim.lrr'; did you mean 'optim.lr'?"
        >>> str(unknown_key_error("optim.learning_rate", "--set"))
        "--set: unknown config key 'optim.learning_rate'; did you mean 'optim.lr'?"
    """
    keys_under = [known for known in KNOWN_KEYS if known.startswith(f"{key}.")]
    if keys_under:  # e.g. "optim: 5": a section given one value instead of its keys
        return GraphSSLError(f"{where}: '{key}' is a section of keys ({', '.join(keys_under[:3])}"
                             f"{', ...' if len(keys_under) > 3 else ''}), not a value; give its keys, e.g. "
                             f"{keys_under[0]}")
    section, _, name = key.rpartition(".")
    renamed = [known for known in KNOWN_KEYS if known.rpartition(".")[2] == _OTHER_NAMES.get(name)]
    # The renamed key in the section given first ('train.epochs' is optim.steps, in another section).
    renamed.sort(key=lambda known: not known.startswith(f"{section}."))
    close = renamed or difflib.get_close_matches(key, KNOWN_KEYS, n=1)
    hint = f"did you mean '{close[0]}'?" if close else "see configs/cora.yaml for the keys"
    return GraphSSLError(f"{where}: unknown config key '{key}'; {hint}")


def set_key(config: dict[str, Any], key: str, value: Any, where: str = "--set") -> None:
    """Set a dotted ``key`` (e.g. ``optim.lr``) in ``config``, in place; an unknown key is an error.

    Example:
        >>> config = load_config(None)
        >>> set_key(config, "optim.lr", 0.002)
        >>> config["optim"]["lr"]
        0.002
    """
    if key not in KNOWN_KEYS:
        raise unknown_key_error(key, where)
    if key == "train.precision" and is_whole_number(value):
        value = str(value)  # YAML reads 32 as a number; the precisions are names
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[leaf] = value


def merge(config: dict[str, Any], overrides: dict[str, Any], where: str) -> None:
    """Apply a nested dictionary of overrides (as read from YAML) onto ``config``, in place.

    Example:
        >>> config = load_config(None)
        >>> merge(config, {"encoder": {"layers": [512, 256]}}, "my.yaml")
        >>> config["encoder"]["layers"]
        [512, 256]
    """
    if not isinstance(overrides, dict):
        raise GraphSSLError(f"{where}: a config must be a mapping of sections to keys; see configs/cora.yaml")
    for key, value in _flatten(overrides).items():
        set_key(config, key, value, where)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split a ``--set KEY=VALUE`` and read VALUE as YAML (so ``[256,256]``, ``0.1`` and ``true`` work).

    Returns:
        ``(key, value)``.

    Example:
        >>> parse_assignment("encoder.layers=[256,128]")
        ('encoder.layers', [256, 128])
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise GraphSSLError(f"--set '{text}': expected KEY=VALUE, e.g. --set optim.lr=0.001")
    return key.strip(), read_yaml(raw, f"--set {key.strip()}")


_DEVICE_NAME = re.compile(r"auto|(cpu|cuda)(:(0|[1-9]\d{0,8}))?")  # the indices torch parses: no leading zeros


def device_name(name: str) -> str:
    """``--device`` checked by its form alone: ``auto``, ``cpu`` or ``cuda[:N]`` (whether this machine has that
    device is :func:`graphssl.devices.resolve_device`'s to say, once torch is loaded).

    Returns:
        ``name``, unchanged.

    Example:
        >>> device_name("cuda:1")
        'cuda:1'
    """
    if not _DEVICE_NAME.fullmatch(name):
        raise GraphSSLError(f"--device {name}: graphssl trains on the CPU or a CUDA GPU; use auto, cpu or cuda[:N]")
    return name


def dataset_name(name: str) -> str:
    """``name`` as graphssl spells it: case does not matter (``Cora`` is ``cora``); an unknown name is an error.

    Returns:
        The lower-case name, one of :data:`DATASETS`.

    Example:
        >>> dataset_name("Cora")
        'cora'
    """
    key = name.lower()
    if key not in DATASETS:
        raise GraphSSLError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    return key


def config_dir() -> Path:
    """graphssl's own configs: ``graphssl/configs`` in an installed wheel, ``configs/`` beside the package in a
    source checkout or an editable install (the build copies the latter to the former; see ``setup.cfg``).

    Returns:
        The folder holding ``cora.yaml``, ``ogbn-arxiv.yaml`` and ``spaces/``.

    Example:
        >>> (config_dir() / "cora.yaml").is_file()
        True
    """
    package = Path(__file__).resolve().parent
    candidates = (package / "configs", package.parent / "configs")
    for folder in candidates:
        if (folder / "cora.yaml").is_file():
            return folder
    raise GraphSSLError(f"graphssl's configs are not installed (no cora.yaml in {' or '.join(map(str, candidates))}); "
                        f"reinstall graphssl")


def config_for_dataset(dataset: str) -> Path:
    """The config a run on ``dataset`` starts from when no ``--config`` is given.

    graphssl's ``<dataset>.yaml`` when it ships one (``cora``, ``ogbn-arxiv``),
    else ``cora.yaml``, the built-in defaults (tuned on Cora; README, 'Choices').
    An unknown dataset is an error, never a silent fall-back to Cora's settings.

    Returns:
        The path of the YAML file.

    Example:
        >>> config_for_dataset("ogbn-arxiv").name, config_for_dataset("citeseer").name
        ('ogbn-arxiv.yaml', 'cora.yaml')
    """
    folder = config_dir()
    own = folder / f"{dataset_name(dataset)}.yaml"
    return own if own.is_file() else folder / "cora.yaml"


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The built-in defaults, then the YAML file at ``path`` (if any), then ``overrides``; validated.

    Args:
        path: a YAML config file, e.g. :func:`config_for_dataset`'s.
        overrides: values by dotted key, e.g. ``{"optim.lr": 0.002, "encoder.layers": [256, 128]}``;
            an unknown key is an error.

    Returns:
        The config, a nested dictionary with every key of :data:`DEFAULTS`.

    Example:
        >>> config = load_config(None, {"werank.alpha": 0.1, "optim.steps": 500})
        >>> config["werank"]["alpha"], config["optim"]["steps"], config["optim"]["lr"]
        (0.1, 500, 0.001004)
    """
    return with_overrides(config_file_over_defaults(path), overrides)


def with_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``config`` (every key of :data:`DEFAULTS`, e.g. :func:`config_file_over_defaults`'s) with
    ``overrides`` (values by dotted key) set; validated, as :func:`load_config`.

    Example:
        >>> with_overrides(config_file_over_defaults(None), {"optim.steps": 500})["optim"]["steps"]
        500
    """
    config = copy.deepcopy(dict(config))
    for key, value in (overrides or {}).items():
        set_key(config, key, copy.deepcopy(value))
    validate(config)
    return without_negative_zeros(config)


def config_file_over_defaults(path: str | Path | None) -> dict[str, Any]:
    """The built-in defaults with the YAML file at ``path`` (if any) merged in: its keys checked, its values not.

    A file can be refused here only for what it is (missing, not YAML, unknown keys); its values are judged
    once the command's own settings are applied (:func:`load_config`), as bench's ``--steps`` may fix them.

    Returns:
        A new nested dictionary with every key of :data:`DEFAULTS`.

    Example:
        >>> config_file_over_defaults(None)["optim"]["steps"] == DEFAULTS["optim"]["steps"]
        True
    """
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        merge(config, read_yaml_file(path, "--config", "an existing YAML file") or {}, str(path))
    return config


def without_negative_zeros(value: Any) -> Any:
    """``value`` with every float -0.0 made 0.0 (``--werank -0`` is plain BGRL, and is named so in run folders).

    Returns:
        A copy of ``value`` (a number, or lists and dicts of them), the same but for the sign of zeros.

    Example:
        >>> without_negative_zeros({"alpha": [-0.0, 0.1]})
        {'alpha': [0.0, 0.1]}
    """
    return map_leaves(value, lambda leaf: leaf + 0.0 if isinstance(leaf, float) else leaf)


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise GraphSSLError(f"config key '{key}' is {value!r}; it must be {expected}")


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool).

    Returns:
        ``True`` or ``False``.

    Example:
        >>> is_number(0.1), is_number(True), is_number(float("nan")), is_number(10**400)
        (True, False, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def is_recorded_alpha(value: Any) -> bool:
    """Whether ``value`` has the shape of a ``werank`` coefficient a run recorded: a number >= 0, or a list of
    numbers (one per matrix). What readers of results accept; :func:`load_config` checks a config fully.

    Returns:
        ``True`` or ``False``.

    Example:
        >>> is_recorded_alpha(0.1), is_recorded_alpha([0.1, 0.0]), is_recorded_alpha(-1), is_recorded_alpha("0.1")
        (True, True, False, False)
    """
    return is_number(value) and value >= 0 or isinstance(value, list) and all(map(is_number, value))


def is_whole_number(value: Any) -> bool:
    """Whether ``value`` is an int (not a bool) that fits in 64 bits, as torch's sizes and counts must.

    Returns:
        ``True`` or ``False``.

    Example:
        >>> is_whole_number(3), is_whole_number(3.0), is_whole_number(10**20)
        (True, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63


# Keys where 0 cannot work, with the flag that sets them ("" when only --set does).
POSITIVE = {"optim.steps": "--steps", "optim.lr": "", "predictor.hidden": "", "probe.max_iter": "",
            "grace.temperature": "", "grace.projection_hidden": "", "grace.chunk_size": ""}


def validate(config: dict[str, Any]) -> None:
    """Check every key of ``config``; raise :class:`GraphSSLError` naming the first value that cannot work.

    Example:
        >>> config = load_config(None)
        >>> config["optim"]["steps"] = 0
        >>> validate(config)
        Traceback (most recent call last):
        ...
        graphssl.errors.GraphSSLError: config key 'optim.steps' is 0; it must be a whole number > 0 below 2^63 (--steps)
    """
    flat = _flatten(config)
    for key, default in _flatten(DEFAULTS).items():
        value = flat[key]
        # The first message already says the whole rule: > 0 where 0 cannot work, and the flag that sets it.
        bound = "> 0" if key in POSITIVE else ">= 0"
        flag = f" ({POSITIVE[key]})" if POSITIVE.get(key) else ""
        if isinstance(default, bool):
            _check(isinstance(value, bool), key, value, "true or false")
        elif is_whole_number(default):
            _check(is_whole_number(value) and (value > 0 if key in POSITIVE else value >= 0), key, value,
                   f"a whole number {bound} below 2^63{flag}")
        elif isinstance(default, float) and key != "werank.alpha":  # alpha may be a list; checked below
            _check(is_number(value) and (value > 0 if key in POSITIVE else value >= 0), key, value,
                   f"a finite number {bound}{flag}")

    layers = flat["encoder.layers"]
    for key in ("augment.drop_edge_1", "augment.drop_edge_2", "augment.mask_feature_1", "augment.mask_feature_2"):
        _check(flat[key] < 1, key, flat[key], "a probability in [0, 1)")
    for key in ("ema.start", "ema.end"):
        _check(flat[key] <= 1, key, flat[key], "a momentum in [0, 1]")

    _check(isinstance(layers, list) and layers and all(is_whole_number(n) and n > 0 for n in layers),
           "encoder.layers", layers, "a non-empty list of layer sizes, e.g. [512, 256]")
    _check(flat["optim.lr_scaling"] in ("linear", "none"), "optim.lr_scaling", flat["optim.lr_scaling"],
           "linear (lr x number of processes) or none")
    _check(flat["encoder.norm"] in NORMS, "encoder.norm", flat["encoder.norm"], f"one of {', '.join(NORMS)}")
    _check(flat["encoder.activation"] in ACTIVATIONS, "encoder.activation", flat["encoder.activation"],
           f"one of {', '.join(ACTIVATIONS)}")
    grid = flat["probe.l2_grid"]
    _check(isinstance(grid, list) and grid and all(is_number(v) and v >= 0 for v in grid),
           "probe.l2_grid", grid, "a non-empty list of L2 strengths >= 0")
    fanouts = flat["train.num_neighbors"]
    _check(isinstance(fanouts, list) and all(is_whole_number(k) and (k > 0 or k == -1) for k in fanouts),
           "train.num_neighbors", fanouts, "a list of neighbour counts per layer (-1: all), e.g. [10, 10]")
    if flat["train.batch_size"] and len(fanouts) != len(layers):
        raise GraphSSLError(f"config key 'train.num_neighbors' has {len(fanouts)} entries but the encoder has "
                            f"{len(layers)} layers; give one neighbour count per layer (--num-neighbors)")
    _check(flat["probe.protocol"] in PROBE_PROTOCOLS, "probe.protocol", flat["probe.protocol"],
           f"one of {', '.join(PROBE_PROTOCOLS)}")
    _check(flat["train.precision"] in PRECISIONS, "train.precision", flat["train.precision"],
           f"one of {', '.join(PRECISIONS)} (--precision)")

    _check(flat["method"] in METHOD_NAMES, "method", flat["method"], f"one of {', '.join(METHOD_NAMES)}")
    expander = flat["vicreg.expander_layers"]
    _check(isinstance(expander, list) and expander and all(is_whole_number(n) and n > 0 for n in expander),
           "vicreg.expander_layers", expander, "a non-empty list of layer sizes, e.g. [512, 512, 512]")
    _check(flat["werank.scope"] in WERANK_SCOPES, "werank.scope", flat["werank.scope"],
           f"one of {', '.join(WERANK_SCOPES)}")

    _check_werank_schedule(flat)
    alpha = flat["werank.alpha"]
    if isinstance(alpha, list):
        _check(all(is_number(a) and a >= 0 for a in alpha), "werank.alpha", alpha,
               "coefficients >= 0 (one per encoder layer)")
        head = head_matrices(config) if flat["werank.scope"] == "encoder+head" else 0
        if len(alpha) != len(layers) + head:
            where = (f"the encoder has {len(layers)} layers; give one coefficient per layer" if not head else
                     f"WERank regularizes {len(layers) + head} matrices under werank.scope: encoder+head "
                     f"({len(layers)} encoder layers, then {head} of the {flat['method']} head); give one per matrix")
            raise GraphSSLError(f"config key 'werank.alpha' has {len(alpha)} coefficients but {where} "
                                f"or a single number for all")
    else:
        _check(is_number(alpha) and alpha >= 0, "werank.alpha", alpha,
               "a coefficient >= 0 (--werank), or a list with one per encoder layer")


def _check_werank_schedule(flat: dict[str, Any]) -> None:
    """The adaptive schedule's constants, and what it needs: one coefficient to adapt, and rank measurements."""
    schedule = flat["werank.schedule"]
    _check(schedule in WERANK_SCHEDULES, "werank.schedule", schedule, f"one of {', '.join(WERANK_SCHEDULES)}")
    fraction = flat["werank.target_fraction"]
    _check(0 < fraction <= 1, "werank.target_fraction", fraction, "a fraction of the embedding size in (0, 1]")
    _check(flat["werank.adapt_factor"] > 1, "werank.adapt_factor", flat["werank.adapt_factor"],
           "a multiplicative step > 1")
    # A lower bound of 0 would let alpha shrink towards 0, from where multiplicative steps never climb back.
    _check(flat["werank.alpha_min"] > 0, "werank.alpha_min", flat["werank.alpha_min"], "a coefficient > 0")
    _check(flat["werank.alpha_max"] >= flat["werank.alpha_min"], "werank.alpha_max", flat["werank.alpha_max"],
           f"a coefficient >= werank.alpha_min ({flat['werank.alpha_min']})")
    if schedule != "adaptive":
        return
    if isinstance(flat["werank.alpha"], list):
        raise GraphSSLError(f"config key 'werank.alpha' is {flat['werank.alpha']!r}, but werank.schedule: adaptive "
                            f"adapts one coefficient for every matrix; give werank.alpha as one number (its start)")
    _check(flat["train.spectra_every"] > 0, "train.spectra_every", flat["train.spectra_every"],
           "a whole number > 0 under werank.schedule: adaptive, which adapts alpha from the rank measured every "
           "train.spectra_every steps")


def head_matrices(config: dict[str, Any]) -> int:
    """How many weight matrices the head of ``config``'s method has: what ``werank.scope: encoder+head`` adds.

    BGRL's predictor and GRACE's projection head are Linear → activation → Linear;
    VICReg's expander has one Linear per ``vicreg.expander_layers`` entry;
    CCA-SSG has no head.  (A test keeps this equal to the built models.)

    Returns:
        The number of 2-D weights of the head.

    Example:
        >>> [head_matrices(load_config(None, {"method": method})) for method in METHOD_NAMES]
        [2, 2, 3, 0]
    """
    method = config["method"]
    return {"bgrl": 2, "grace": 2, "vicreg": len(config["vicreg"]["expander_layers"]), "cca-ssg": 0}[method]


# The key that sizes each method's head (CCA-SSG has none).
HEAD_SIZE_KEYS = {"bgrl": "predictor.hidden", "grace": "grace.projection_hidden", "vicreg": "vicreg.expander_layers"}


def size_settings(config: dict[str, Any]) -> str:
    """The keys of ``config`` that decide how much memory its model takes, for messages about memory.

    Returns:
        ``key value`` pairs, comma-separated.

    Example:
        >>> size_settings(load_config(None))
        'encoder.layers [512, 256], predictor.hidden 512, train.batch_size 0'
    """
    flat = _flatten(config)
    keys = ("encoder.layers", HEAD_SIZE_KEYS.get(config["method"]), "train.batch_size")
    return ", ".join(f"{key} {flat[key]}" for key in keys if key is not None)


def with_defaults(saved: Any) -> Any:
    """A config saved by an earlier graphssl, with the keys added since then at their defaults.

    A key is only ever added with a default that keeps the old behaviour, so
    ``with_defaults(saved)`` is the config the saved run actually ran with, and
    comparing it with a config made now says whether the two runs are the same.

    Returns:
        The completed config (``saved`` itself when it is not shaped like a config).

    Example:
        >>> old = load_config(None)
        >>> del old["probe"]["protocol"]
        >>> with_defaults(old) == load_config(None)
        True
    """
    if not isinstance(saved, dict):
        return saved
    config = copy.deepcopy(DEFAULTS)
    for name, value in saved.items():
        default = config.get(name, {})
        if isinstance(value, dict) != isinstance(default, dict):
            return saved  # not shaped like a config: a section where a key belongs, or the reverse
        config[name] = {**default, **value} if isinstance(value, dict) else value
    return config


# werank's adaptive constants are read only under werank.schedule: adaptive; under constant their values change
# nothing, so a run saved with other values (a default chosen later, as these were) is the same training.
ADAPTIVE_ONLY_KEYS = ("werank.target_fraction", "werank.adapt_factor", "werank.alpha_min", "werank.alpha_max")


def without_keys(config: dict[str, Any], keys: Any) -> dict[str, Any]:
    """``config`` (a copy) less the dotted ``keys`` it holds (a section that is not a mapping is left as it is)."""
    config = copy.deepcopy(config)
    for key in keys:
        section, _, name = key.rpartition(".")
        holder = config.get(section) if section else config
        if isinstance(holder, dict):
            holder.pop(name, None)
    return config


def training_identity(config: Any) -> Any:
    """What decides a run's training: ``config`` completed by :func:`with_defaults`, less the keys that its own
    settings leave unread (the adaptive schedule's constants under ``werank.schedule: constant``).  Two configs
    with equal identities train the same run, so ``bench`` and ``tune`` compare these to skip finished runs.

    Returns:
        The identity (``config`` itself when it is not shaped like a config).

    Example:
        >>> a = load_config(None)
        >>> training_identity(a) == training_identity(load_config(None, {"werank.adapt_factor": 3.0}))
        True
        >>> training_identity(a) == training_identity(load_config(None, {"werank.schedule": "adaptive"}))
        False
    """
    config = with_defaults(config)
    if not isinstance(config, dict) or not isinstance(config.get("werank"), dict):
        return config
    return without_keys(config, ADAPTIVE_ONLY_KEYS) if config["werank"].get("schedule") == "constant" else config


def dump_config(config: dict[str, Any]) -> str:
    """The config as YAML, in the schema's section order (what ``config.yaml`` holds).

    Returns:
        YAML text that :func:`load_config` reads back to the same config.

    Example:
        >>> print(dump_config({"optim": {"lr": 0.001, "steps": 1000}}), end="")
        optim: {lr: 0.001, steps: 1000}
    """
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
