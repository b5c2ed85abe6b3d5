"""The hyper-parameters of `inpaint.yml` as a typed, validated, immutable `Config`.

One path: `inpaint.yml` -> `load_config(path, overrides)` -> `Config` -> library. Every key of the file
is a field; unknown keys, missing keys, wrong types and invalid values raise `ConfigError` with one
line naming the file (and the `--set` override, if that is where the value came from) and the key.
`inpaint.yml` documents each key; the comments below only group the fields.

YAML details: the file is read with a safe loader that also reads `1e-4` as a float (YAML 1.2; PyYAML's
YAML 1.1 rules would make it a string) and rejects duplicate keys (PyYAML silently keeps the last).

No validation library: pydantic (or attrs with cattrs) would replace only the type checks
(`_coerce`, about 30 lines), not the value checks, and its messages (several lines, in its own
words) would have to be rewritten into this one line naming the file, the override and the key.
"""
import copy
import dataclasses
import math
import os
import re

import yaml

from inpaint import files

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'inpaint.yml')
"""The project's `inpaint.yml`, shipped in the package (wheel or editable install). In a checkout
`inpaint/inpaint.yml` is a symbolic link to the top-level `inpaint.yml`, the one file users edit;
building a wheel or an sdist copies the file itself."""

GANS = ('sngan', 'wgan_gp')


class ConfigError(ValueError):
    """A bad configuration; the message is one line naming the file and the key.

    Attributes:
        key: the offending key, or None when the problem is not about one key (e.g. unreadable file).
    """

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


@dataclasses.dataclass(frozen=True)
class Config:
    """Typed hyper-parameters, one field per key of `inpaint.yml` (see its comments for meanings).

    Construction validates (also through `replace`); ints are accepted for float fields and stored
    as floats, so a config saved with `save_config` loads back equal.
    """
    # machine info (only num_gpus_per_job is used; the others are accepted and ignored)
    num_gpus_per_job: int
    num_cpus_per_job: int
    num_hosts_per_job: int
    memory_per_job: int
    gpu_type: str
    # parameters
    name: str
    model_restore: str
    dataset: str
    random_crop: bool
    val: bool
    log_dir: str
    gan: str
    gan_loss_alpha: float
    gan_with_mask: bool
    discounted_mask: bool  # ignored, as in the original v2 code
    random_seed: bool
    padding: str
    # training
    train_spe: int
    max_iters: int
    viz_max_out: int
    val_psteps: int
    # data
    data_flist: dict[str, list[str]]
    static_view_size: int
    img_shapes: list[int]
    height: int
    width: int
    max_delta_height: int
    max_delta_width: int
    batch_size: int
    vertical_margin: int
    horizontal_margin: int
    # loss
    ae_loss: bool
    l1_loss: bool  # ignored, as in the original v2 code
    l1_loss_alpha: float
    # to tune
    guided: bool
    edge_threshold: float
    # === Additions of this project ===
    cnum_generator: int
    cnum_discriminator: int
    gp_lambda: float
    mask_per_image: bool
    lr: float
    beta1: float
    beta2: float
    max_to_keep: int
    log_steps: int
    num_parallel_calls: int
    shuffle_buffer: int
    seed: int
    mixed_precision: bool
    heldout_steps: int
    heldout_images: int

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _coerce(field.name, getattr(self, field.name), field.type))
        _check_values(self)

    @property
    def train_flist(self):
        """Path of the training file list: `data_flist[dataset][0]`."""
        return self.data_flist[self.dataset][0]

    @property
    def val_flist(self):
        """Path of the validation file list `data_flist[dataset][1]`, or None when the entry has none."""
        entry = self.data_flist[self.dataset]
        return entry[1] if len(entry) > 1 else None

    def replace(self, **changes):
        """Returns a copy with `changes` applied, validated like a loaded file.

        Raises:
            ConfigError: unknown key or invalid value.
        """
        for key in changes:
            if key not in _FIELD_TYPES:
                raise ConfigError(f'Config.replace: {key}: unknown key', key)
        try:
            return dataclasses.replace(self, **changes)
        except ConfigError as error:
            raise ConfigError(f'Config.replace: {error}', error.key) from None

    def to_dict(self):
        """Returns a plain dict (fresh lists and dicts) in the file's key order."""
        return {field.name: copy.deepcopy(getattr(self, field.name)) for field in dataclasses.fields(self)}


_FIELD_TYPES = {field.name: field.type for field in dataclasses.fields(Config)}


def load_config(path=DEFAULT_CONFIG, overrides=()):
    """Reads a YAML config file, applies overrides and validates.

    Args:
        path: the YAML file (default: the project's `inpaint.yml`).
        overrides: strings `key=value`, applied in order after the file; the value is parsed as YAML
            (`batch_size=4`, `img_shapes=[64,64,3]`, `lr=2e-4`; an empty value is the empty string).
            `data_flist.<name>=[train, val]` sets one entry of data_flist.
    Returns:
        a `Config`.
    Raises:
        ConfigError: unreadable file, bad YAML, unknown, missing or duplicate key, wrong type,
            invalid value, malformed override.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding='utf-8') as stream:
            values = yaml.load(stream, Loader=_Loader)
    except OSError as error:
        raise ConfigError(f'{path}: cannot read the config file: {error.strerror}') from None
    except _DuplicateKey as error:
        raise ConfigError(f'{path}: {error.key}: duplicate key (line {error.line})', error.key) from None
    except yaml.YAMLError as error:
        raise ConfigError(f'{path}: not valid YAML: {" ".join(str(error).split())}') from None
    if not isinstance(values, dict):
        raise ConfigError(f'{path}: expected a mapping of keys to values, got {_describe(values)}')
    for key in values:
        if key not in _FIELD_TYPES:
            raise ConfigError(f'{path}: {key}: unknown key', key)
    origin = {}  # key -> the override that last set it
    for override in overrides:
        key, value = _parse_override(path, override)
        origin[key] = override
        if '.' in key:  # data_flist.<name>
            entry = key.split('.', 1)[1]
            flists = values.get('data_flist')
            values['data_flist'] = dict(flists) if isinstance(flists, dict) else {}
            values['data_flist'][entry] = value
            origin['data_flist'] = override
        else:
            values[key] = value
    for key in _FIELD_TYPES:
        if key not in values:
            raise ConfigError(f'{path}: {key}: missing key', key)
    try:
        return Config(**values)
    except ConfigError as error:
        where = f'{path} (--set {origin[error.key]})' if error.key in origin else path
        raise ConfigError(f'{where}: {error}', error.key) from None


SAVED_HEADER = '# Resolved configuration (inpaint/config.py save_config); load with load_config.\n'


def save_config(config, path):
    """Writes `config` as YAML that `load_config` reads back equal, atomically; creates the parent
    folder. An existing file is replaced only if `save_config` wrote it (its first line).

    Args:
        config: a `Config`.
        path: the file to write, e.g. `<log_dir>/config.yml`.
    Raises:
        ConfigError: a file that `save_config` did not write is at `path`.
    """
    path = os.fspath(path)
    if os.path.lexists(path):
        try:
            with open(path, encoding='utf-8') as stream:
                ours = stream.readline() == SAVED_HEADER
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise ConfigError(f'{path}: exists and was not written by a training run; move it '
                              f'away or use another log_dir')
    text = yaml.dump(config.to_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=1000)
    with files.text_written_atomically(path) as stream:
        stream.write(SAVED_HEADER)
        stream.write(text)


# --- YAML reading --------------------------------------------------------------------------------

class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, line):
        super().__init__(key)
        self.key, self.line = key, line


class _Loader(yaml.SafeLoader):
    """SafeLoader + YAML 1.2 floats such as `1e-4` + duplicate keys rejected."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes the strings `_Loader` would read as floats (such as the name `1e5`)."""


# Exponent without a dot (`1e-4`, `-2E5`); the other float forms are already resolved by SafeLoader.
for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver(
        'tag:yaml.org,2002:float', re.compile(r'^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$'), list('-+0123456789'))


def _parse_override(path, override):
    """Splits `key=value` and parses the value as YAML; returns (key, value)."""
    key, sep, text = override.partition('=')
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f'{path} (--set {override}): expected key=value')
    field, dot, entry = key.partition('.')
    if field not in _FIELD_TYPES or (dot and (field != 'data_flist' or not entry)):
        raise ConfigError(f'{path} (--set {override}): {key}: unknown key', field)
    if not text.strip():
        return key, ''
    try:
        return key, yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise ConfigError(
            f'{path} (--set {override}): {key}: value is not valid YAML: {" ".join(str(error).split())}',
            field) from None


# --- types -----------------------------------------------------------------------------------------

def _describe(value):
    if value is None:
        return 'null'
    return f'{type(value).__name__} {value!r}'


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _coerce(key, value, kind):
    """Checks `value` against the field type `kind`; returns it as stored (ints as floats for
    float fields, tuples as lists)."""
    if kind == dict[str, list[str]]:
        return _coerce_flists(key, value)
    accepts, expected, stored = _TYPES[kind]
    if not accepts(value):
        raise ConfigError(f'{key}: expected {expected}, got {_describe(value)}', key)
    return stored(value)


_TYPES = {  # field type: (accepts a value, what the message expects, stored as)
    bool: (lambda value: isinstance(value, bool), 'True or False', bool),
    int: (_is_int, 'an integer', int),
    float: (lambda value: _is_int(value) or isinstance(value, float), 'a number', float),
    str: (lambda value: isinstance(value, str), 'a string', str),
    list[int]: (lambda value: isinstance(value, (list, tuple)) and all(map(_is_int, value)),
                'a list of integers', list),
}


def _coerce_flists(key, value):
    """data_flist: {name: [train file list] or [train, validation]}; each entry is named in errors."""
    if not isinstance(value, dict) or not all(isinstance(name, str) for name in value):
        raise ConfigError(f'{key}: expected a mapping of names to lists of file paths, got '
                          f'{_describe(value)}', key)
    for name, entry in value.items():
        if not isinstance(entry, (list, tuple)) or not all(isinstance(item, str) for item in entry):
            raise _flist_entry_error(name, entry)
    return {name: list(entry) for name, entry in value.items()}


def _flist_entry_error(name, entry):
    return ConfigError(f'data_flist: entry {name!r} must be [train file list] or [train file list, '
                       f'validation file list] of non-empty paths, got {_describe(entry)}',
                       'data_flist')


# --- values ----------------------------------------------------------------------------------------

def _check_values(c):
    """Raises ConfigError for the first invalid value (the types are already checked)."""
    def require(ok, key, problem, show_value=True):
        if not ok:
            got = f', got {getattr(c, key)!r}' if show_value else ''
            raise ConfigError(f'{key}: {problem}{got}', key)

    # Comparisons are written so that NaN fails them.
    for key in ('train_spe', 'max_iters', 'viz_max_out', 'val_psteps', 'batch_size', 'height', 'width',
                'cnum_discriminator', 'max_to_keep', 'log_steps', 'shuffle_buffer', 'heldout_images'):
        require(getattr(c, key) >= 1, key, 'must be >= 1')
    for key in ('num_gpus_per_job', 'static_view_size', 'vertical_margin', 'horizontal_margin',
                'max_delta_height', 'max_delta_width', 'heldout_steps'):
        require(getattr(c, key) >= 0, key, 'must be >= 0')
    for key in ('gan_loss_alpha', 'l1_loss_alpha', 'gp_lambda'):
        require(getattr(c, key) >= 0 and math.isfinite(getattr(c, key)), key, 'must be a finite number >= 0')

    require(len(c.data_flist) >= 1, 'data_flist', 'must name at least one dataset')
    for name, entry in c.data_flist.items():
        if not 1 <= len(entry) <= 2 or not all(entry):
            raise _flist_entry_error(name, entry)
    require(c.dataset in c.data_flist, 'dataset', f'must be a key of data_flist {sorted(c.data_flist)}')
    require(not c.val or c.val_flist is not None, 'val',
            f'True needs a validation file list: data_flist[{c.dataset!r}] has only a training list',
            show_value=False)
    require(c.gan in GANS, 'gan', f'must be one of {list(GANS)}')
    require(c.padding == 'SAME', 'padding', "only 'SAME' is supported")
    require(0 <= c.edge_threshold < 1, 'edge_threshold',
            'must be in [0, 1) (an edge pixel is a line where its value / 255 is above it)')

    require(len(c.img_shapes) == 3 and all(size >= 1 for size in c.img_shapes), 'img_shapes',
            'must be [height, width, channels], three positive integers')
    image_height, image_width, channels = c.img_shapes
    require(channels == 3, 'img_shapes', 'channels must be 3 (the network takes color images)')
    # Two stride-2 convolutions, then contextual attention at half of that resolution (generator.GRID).
    require(image_height % 8 == 0 and image_width % 8 == 0, 'img_shapes',
            'height and width must be multiples of 8')
    # The original draws the box's top from [margin, H - margin - height): that range must not be empty.
    require(c.height + 2 * c.vertical_margin < image_height, 'height',
            f'height + 2 * vertical_margin ({c.height + 2 * c.vertical_margin}) must be less than the '
            f'image height img_shapes[0] ({image_height})', show_value=False)
    require(c.width + 2 * c.horizontal_margin < image_width, 'width',
            f'width + 2 * horizontal_margin ({c.width + 2 * c.horizontal_margin}) must be less than the '
            f'image width img_shapes[1] ({image_width})', show_value=False)
    require(c.max_delta_height < c.height, 'max_delta_height', f'must be less than height ({c.height})')
    require(c.max_delta_width < c.width, 'max_delta_width', f'must be less than width ({c.width})')

    # The narrowest generator conv has cnum/2 outputs, and its gate halves them again.
    require(c.cnum_generator >= 4 and c.cnum_generator % 4 == 0, 'cnum_generator',
            'must be a positive multiple of 4')
    require(c.lr > 0 and math.isfinite(c.lr), 'lr', 'must be a finite number > 0')
    require(0 <= c.beta1 < 1, 'beta1', 'must be in [0, 1)')
    require(0 <= c.beta2 < 1, 'beta2', 'must be in [0, 1)')
    require(c.num_parallel_calls == -1 or c.num_parallel_calls >= 1, 'num_parallel_calls',
            'must be -1 (min(8, CPUs) decoding threads) or >= 1')
    require(not c.heldout_steps or c.val_flist is not None, 'heldout_steps',
            f'> 0 needs a validation file list: data_flist[{c.dataset!r}] has only a training list')
    require(0 <= c.seed < 2**32, 'seed', 'must be in [0, 2**32)')
