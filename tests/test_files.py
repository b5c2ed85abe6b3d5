"""inpaint/files.py: temporary names beside the target, one rename, nothing else touched."""
import os

import pytest

from inpaint import files


def test_a_file_is_written_under_a_temporary_name_then_renamed(tmp_path):
    target = tmp_path / 'out.png'
    with files.written_atomically(str(target)) as partial:
        assert os.path.dirname(partial) == str(tmp_path) and partial.endswith('.partial')
        assert os.path.basename(partial).startswith('.out.png.')
        with open(partial, 'wb') as handle:
            handle.write(b'new')
        assert not target.exists()  # nothing under the target's name until the end
    assert target.read_bytes() == b'new' and os.listdir(tmp_path) == ['out.png']


def test_a_users_file_with_the_old_temporary_name_is_left_alone(tmp_path):
    """The writers used `<path>.partial`, which removed a user's file of that name."""
    mine = tmp_path / 'out.png.partial'
    mine.write_bytes(b'mine')
    with files.written_atomically(str(tmp_path / 'out.png')) as partial:
        with open(partial, 'wb') as handle:
            handle.write(b'new')
    assert mine.read_bytes() == b'mine'


def test_a_failure_leaves_the_earlier_file_and_removes_what_it_made(tmp_path):
    (tmp_path / 'out.png').write_bytes(b'earlier')
    with pytest.raises(RuntimeError):
        with files.written_atomically(str(tmp_path / 'out.png')) as partial:
            with open(partial, 'wb') as handle:
                handle.write(b'half')
            raise RuntimeError('disk full')
    assert os.listdir(tmp_path) == ['out.png'] and (tmp_path / 'out.png').read_bytes() == b'earlier'


def test_missing_folders_are_made_and_removed_again_on_failure(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'kept.txt').write_bytes(b'mine')
    target = tmp_path / 'a' / 'b' / 'c' / 'out.onnx'
    with pytest.raises(RuntimeError):
        with files.written_atomically(str(target)) as partial:
            assert os.path.isdir(tmp_path / 'a' / 'b' / 'c')
            os.mkdir(partial)
            raise RuntimeError('conversion failed')
    assert os.listdir(tmp_path / 'a') == ['kept.txt']
    with files.written_atomically(str(target)) as partial:
        open(partial, 'wb').close()
    assert target.is_file()


def test_a_folder_replaces_a_folder_and_never_a_file_a_folder(tmp_path):
    old = tmp_path / 'saved_model'
    old.mkdir()
    (old / 'saved_model.pb').write_bytes(b'old')
    with files.written_atomically(str(old)) as partial:
        os.mkdir(partial)
        with open(os.path.join(partial, 'saved_model.pb'), 'wb') as handle:
            handle.write(b'new')
    assert os.listdir(tmp_path) == ['saved_model'] and (old / 'saved_model.pb').read_bytes() == b'new'
    with pytest.raises(IsADirectoryError):
        with files.written_atomically(str(old)) as partial:
            open(partial, 'wb').close()
    assert (old / 'saved_model.pb').read_bytes() == b'new' and os.listdir(tmp_path) == ['saved_model']


def test_a_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='created nothing'):
        with files.written_atomically(str(tmp_path / 'out.png')):
            pass
    assert os.listdir(tmp_path) == []


def test_remove_made_refuses_names_it_did_not_make(tmp_path):
    (tmp_path / 'photo.png').write_bytes(b'mine')
    with pytest.raises(ValueError, match='refusing'):
        files.remove_made(str(tmp_path / 'photo.png'))
    assert (tmp_path / 'photo.png').read_bytes() == b'mine'


def test_same_or_inside(tmp_path):
    (tmp_path / 'a' / 'b').mkdir(parents=True)
    assert files.is_same_or_inside(str(tmp_path / 'a' / 'b'), str(tmp_path / 'a'))
    assert files.is_same_or_inside(str(tmp_path / 'a'), str(tmp_path / 'a' / '.'))
    assert not files.is_same_or_inside(str(tmp_path / 'ab'), str(tmp_path / 'a'))
    assert not files.is_same_or_inside(str(tmp_path / 'a'), str(tmp_path / 'a' / 'b'))
