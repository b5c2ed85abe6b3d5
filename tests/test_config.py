"""Tests for inpaint/config.py: inpaint.yml keys and defaults, round trip, overrides, errors."""
import dataclasses
import os

import pytest
import yaml

from inpaint.config import Config, ConfigError, DEFAULT_CONFIG, load_config, save_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPAINT_YML = os.path.join(REPO, 'inpaint.yml')

# The original v2.0.0 inpaint.yml's keys and values, except `dataset` and `log_dir` (changed on purpose)
# and `data_flist` (checked below).
ORIGINAL = {
    'num_gpus_per_job': 1, 'num_cpus_per_job': 4, 'num_hosts_per_job': 1, 'memory_per_job': 32,
    'gpu_type': 'nvidia-tesla-p100', 'name': 'places2_gated_conv_v100', 'model_restore': '',
    'random_crop': False, 'val': False, 'gan': 'sngan', 'gan_loss_alpha': 1.0, 'gan_with_mask': True,
    'discounted_mask': True, 'random_seed': False, 'padding': 'SAME', 'train_spe': 4000,
    'max_iters': 100000000, 'viz_max_out': 10, 'val_psteps': 2000, 'static_view_size': 30,
    'img_shapes': [256, 256, 3], 'height': 128, 'width': 128, 'max_delta_height': 32,
    'max_delta_width': 32, 'batch_size': 16, 'vertical_margin': 0, 'horizontal_margin': 0,
    'ae_loss': True, 'l1_loss': True, 'l1_loss_alpha': 1.0, 'guided': False, 'edge_threshold': 0.6,
}
ORIGINAL_FLISTS = {
    'celebahq': ['data/celeba_hq/train_shuffled.flist', 'data/celeba_hq/validation_static_view.flist'],
    'celeba': ['data/celeba/train_shuffled.flist', 'data/celeba/validation_static_view.flist'],
    'places2': ['data/places2/train_shuffled.flist', 'data/places2/validation_static_view.flist'],
    'imagenet': ['data/imagenet/train_shuffled.flist', 'data/imagenet/validation_static_view.flist'],
}
ADDITIONS = {
    'cnum_generator': 48, 'cnum_discriminator': 64, 'gp_lambda': 10.0, 'mask_per_image': False,
    'lr': 1e-4, 'beta1': 0.5, 'beta2': 0.999, 'max_to_keep': 3, 'log_steps': 100,
    'num_parallel_calls': -1, 'shuffle_buffer': 1000, 'seed': 0, 'mixed_precision': False,
    'heldout_steps': 0, 'heldout_images': 16,
}


def raw_yaml():
    with open(INPAINT_YML) as stream:
        return yaml.safe_load(stream)


def write(tmp_path, values, name='bad.yml'):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return str(path)


def test_default_path_is_the_project_file():
    assert os.path.samefile(DEFAULT_CONFIG, INPAINT_YML)


def test_inpaint_yml_has_the_original_keys_and_values():
    config = load_config(INPAINT_YML)
    values = config.to_dict()
    for key, value in ORIGINAL.items():
        assert values[key] == value, key
    for name, entry in ORIGINAL_FLISTS.items():
        assert config.data_flist[name] == entry, name
    assert config.dataset == 'imagenet_sample'
    assert config.log_dir == 'logs/deepfill'
    assert config.train_flist == '../shared/data/imagenet_sample/train.flist'
    assert config.val_flist == '../shared/data/imagenet_sample/val.flist'
    for key, value in ADDITIONS.items():
        assert values[key] == value, key
    expected_keys = set(ORIGINAL) | set(ADDITIONS) | {'dataset', 'log_dir', 'data_flist'}
    assert set(values) == expected_keys
    assert set(raw_yaml()) == expected_keys


def test_types_follow_the_fields():
    config = load_config(INPAINT_YML)
    assert isinstance(config.gan_loss_alpha, float)  # written `1` in the file
    assert isinstance(config.lr, float) and isinstance(config.batch_size, int)
    assert isinstance(config.img_shapes, list) and isinstance(config.data_flist, dict)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 2


def test_round_trip(tmp_path):
    config = load_config(INPAINT_YML)
    path = tmp_path / 'run' / 'inpaint.yml'  # the parent folder is created
    save_config(config, path)
    assert load_config(path) == config
    small = config.replace(img_shapes=[64, 64, 3], height=32, width=24, max_delta_height=8,
                           max_delta_width=0, lr=2.5e-5, model_restore='logs/x', gan='wgan_gp',
                           name='1e5', log_dir='yes')  # strings YAML could misread as a float, a bool
    save_config(small, tmp_path / 'small.yml')
    assert load_config(tmp_path / 'small.yml') == small


def test_saving_replaces_only_a_config_it_wrote(tmp_path):
    """A user's own `config.yml` in log_dir was overwritten by the training run (before: replaced
    without a check); an earlier saved config is replaced, and the write leaves no other file."""
    config = load_config(INPAINT_YML)
    path = tmp_path / 'config.yml'
    path.write_text('my own notes\n')
    with pytest.raises(ConfigError, match='config.yml: exists and was not written by a training '
                       'run') as info:
        save_config(config, path)
    assert '\n' not in str(info.value) and path.read_text() == 'my own notes\n'
    path.unlink()
    save_config(config.replace(batch_size=3), path)
    save_config(config, path)
    assert load_config(path) == config and os.listdir(tmp_path) == ['config.yml']


def test_to_dict_is_a_copy():
    config = load_config(INPAINT_YML)
    values = config.to_dict()
    values['img_shapes'][0] = 8
    values['data_flist']['imagenet_sample'].append('x')
    assert config.img_shapes == [256, 256, 3]
    assert len(config.data_flist['imagenet_sample']) == 2


def test_overrides_win():
    config = load_config(INPAINT_YML, [
        'batch_size=4', 'img_shapes=[64,64,3]', 'height=32', 'width=32', 'max_delta_height=8',
        'max_delta_width=8', 'lr=2e-4', 'model_restore=', 'gan=wgan_gp', 'batch_size=2',
        'data_flist.tiny=[a.flist]', 'dataset=tiny', 'gan_loss_alpha=3', 'guided=True',
        'edge_threshold=0'])
    assert config.guided and config.edge_threshold == 0.0  # the edge-guided mode is a valid config
    assert config.batch_size == 2  # the last override wins
    assert config.img_shapes == [64, 64, 3]
    assert config.lr == 2e-4 and isinstance(config.lr, float)  # YAML 1.2 float without a dot
    assert config.model_restore == ''
    assert config.gan == 'wgan_gp'
    assert config.gan_loss_alpha == 3.0 and isinstance(config.gan_loss_alpha, float)
    assert config.train_flist == 'a.flist' and config.val_flist is None
    assert config.data_flist['places2'] == ORIGINAL_FLISTS['places2']


def test_replace_validates():
    config = load_config(INPAINT_YML)
    assert config.replace(batch_size=2).batch_size == 2
    assert config.batch_size == 16
    with pytest.raises(ConfigError, match='batch_size'):
        config.replace(batch_size=0)
    with pytest.raises(ConfigError, match='nonexistent'):
        config.replace(nonexistent=1)


# (changes to the file's values, the key the message must name)
ERROR_CASES = [
    ({'bogus_key': 1}, 'bogus_key'),  # unknown key
    ({'batch_size': True}, 'batch_size'),  # a bool is not an int
    ({'batch_size': 4.0}, 'batch_size'),  # a float is not an int
    ({'batch_size': '16'}, 'batch_size'),
    ({'lr': True}, 'lr'),  # a bool is not a float
    ({'lr': 'fast'}, 'lr'),
    ({'val': 1}, 'val'),  # an int is not a bool
    ({'gpu_type': None}, 'gpu_type'),  # ignored keys are still type-checked
    ({'name': 3}, 'name'),
    ({'img_shapes': [256, 256.0, 3]}, 'img_shapes'),
    ({'img_shapes': [256, 256]}, 'img_shapes'),
    ({'img_shapes': [256, 0, 3]}, 'img_shapes'),
    ({'img_shapes': [256, 256, 1]}, 'img_shapes'),
    ({'img_shapes': [250, 256, 3]}, 'img_shapes'),  # not a multiple of 8
    ({'data_flist': ['a', 'b']}, 'data_flist'),
    ({'data_flist': {'x': 'a.flist'}}, 'data_flist'),
    ({'data_flist': {'x': ['a', 'b', 'c']}, 'dataset': 'x'}, 'data_flist'),
    ({'dataset': 'nowhere'}, 'dataset'),
    ({'data_flist': {'x': ['train.flist']}, 'dataset': 'x', 'val': True}, 'val'),
    ({'gan': 'lsgan'}, 'gan'),
    ({'padding': 'REFLECT'}, 'padding'),
    ({'edge_threshold': 1.0}, 'edge_threshold'),  # nothing would ever be a line
    ({'edge_threshold': -0.1}, 'edge_threshold'),
    ({'edge_threshold': float('nan')}, 'edge_threshold'),
    ({'height': 300}, 'height'),
    ({'height': 256}, 'height'),
    ({'vertical_margin': 64}, 'height'),  # 128 + 2 * 64 leaves no room for the box
    ({'width': 0}, 'width'),
    ({'horizontal_margin': -1}, 'horizontal_margin'),
    ({'max_delta_height': 128}, 'max_delta_height'),
    ({'max_delta_width': -2}, 'max_delta_width'),
    ({'batch_size': 0}, 'batch_size'),
    ({'train_spe': 0}, 'train_spe'),
    ({'val_psteps': 0}, 'val_psteps'),
    ({'log_steps': 0}, 'log_steps'),
    ({'cnum_generator': 30}, 'cnum_generator'),
    ({'cnum_discriminator': 0}, 'cnum_discriminator'),
    ({'lr': 0}, 'lr'),
    ({'lr': float('nan')}, 'lr'),
    ({'beta1': 1.0}, 'beta1'),
    ({'beta2': -0.1}, 'beta2'),
    ({'gp_lambda': -1.0}, 'gp_lambda'),
    ({'l1_loss_alpha': -1}, 'l1_loss_alpha'),
    ({'num_parallel_calls': 0}, 'num_parallel_calls'),
    ({'shuffle_buffer': 0}, 'shuffle_buffer'),
    ({'seed': -1}, 'seed'),
    ({'heldout_steps': -1}, 'heldout_steps'),
    ({'heldout_images': 0}, 'heldout_images'),
]


@pytest.mark.parametrize('changes, key', ERROR_CASES,
                         ids=[f'{key}-{i}' for i, (_, key) in enumerate(ERROR_CASES)])
def test_bad_values_name_file_and_key(tmp_path, changes, key):
    values = raw_yaml()
    values.update(changes)
    path = write(tmp_path, values)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'{path}: {key}: '), message
    assert info.value.key == key


def test_missing_key(tmp_path):
    values = raw_yaml()
    del values['static_view_size']
    path = write(tmp_path, values)
    with pytest.raises(ConfigError, match=r'bad\.yml: static_view_size: missing key'):
        load_config(path)


def test_duplicate_key(tmp_path):
    path = tmp_path / 'dup.yml'
    path.write_text(open(INPAINT_YML).read() + '\nbatch_size: 8\n')
    with pytest.raises(ConfigError, match=r'dup\.yml: batch_size: duplicate key \(line \d+\)'):
        load_config(path)


def test_not_a_mapping_and_missing_file(tmp_path):
    path = tmp_path / 'list.yml'
    path.write_text('- 1\n- 2\n')
    with pytest.raises(ConfigError, match=r'list\.yml: expected a mapping'):
        load_config(path)
    with pytest.raises(ConfigError, match=r'absent\.yml: cannot read'):
        load_config(tmp_path / 'absent.yml')
    path = tmp_path / 'broken.yml'
    path.write_text('batch_size: [1\n')
    with pytest.raises(ConfigError, match=r'broken\.yml: not valid YAML'):
        load_config(path)


@pytest.mark.parametrize('override, key', [
    ('batch_size=true', 'batch_size'),
    ('gan=lsgan', 'gan'),
    ('no_such_key=1', 'no_such_key'),
    ('img_shapes.x=1', 'img_shapes.x'),
    ('lr=[1', 'lr'),
])
def test_override_errors_name_the_override(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(INPAINT_YML, [override])
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'{INPAINT_YML} (--set {override}): {key}: '), message


def test_a_scalar_for_a_file_list_names_only_that_entry():
    """`--set data_flist.kodak=file.flist` (a scalar where a list belongs) used to print the whole
    data_flist mapping; the message names the override, the entry and what it must be."""
    with pytest.raises(ConfigError) as info:
        load_config(INPAINT_YML, ['data_flist.kodak=file.flist'])
    assert str(info.value) == (
        f"{INPAINT_YML} (--set data_flist.kodak=file.flist): data_flist: entry 'kodak' must be "
        f"[train file list] or [train file list, validation file list] of non-empty paths, got "
        f"str 'file.flist'")
    assert info.value.key == 'data_flist'


def test_override_without_equals():
    with pytest.raises(ConfigError, match=r'\(--set batch_size\): expected key=value'):
        load_config(INPAINT_YML, ['batch_size'])


def test_invalid_combination_names_the_file_value(tmp_path):
    # The image shrinks by override; the message names the key whose check fails (height, from the file).
    with pytest.raises(ConfigError, match=r'inpaint\.yml: height: .*img_shapes\[0\] \(64\)'):
        load_config(INPAINT_YML, ['img_shapes=[64,64,3]'])


def test_config_fields_match_file_order():
    assert [field.name for field in dataclasses.fields(Config)] == list(raw_yaml())


def test_inpaint_yml_says_where_list_paths_resolve_and_that_a_folder_works(tmp_path, monkeypatch):
    """What the file says is what the data pipeline does: a list's image paths are relative to the
    list's own folder (it said: to the working directory), and a folder is a list of its images."""
    from inpaint.imageio import list_images
    with open(INPAINT_YML, encoding='utf-8') as handle:
        text = ' '.join(handle.read().replace('#', ' ').split())
    assert "the image paths inside a file list are relative to that list's own folder" in text
    assert 'a list is a text file with one image path per line' in text and 'or a folder' in text
    (tmp_path / 'data' / 'photos').mkdir(parents=True)
    for name in ('b.png', 'a.jpg', 'notes.txt'):
        (tmp_path / 'data' / 'photos' / name).write_bytes(b'x')
    (tmp_path / 'data' / 'train.flist').write_text('photos/a.jpg\nphotos/b.png\n')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    photos = [str(tmp_path / 'data' / 'photos' / name) for name in ('a.jpg', 'b.png')]
    assert list_images(str(tmp_path / 'data' / 'train.flist')) == photos
    assert list_images(os.path.relpath(tmp_path / 'data' / 'photos')) == [
        os.path.relpath(path) for path in photos]
