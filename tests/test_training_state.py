"""inpaint/training_state.py: rotation removes, and writing replaces, only this project's training
checkpoints."""
import os

import numpy as np
import pytest

from inpaint import training_state


def test_rotation_keeps_the_newest_and_never_removes_a_foreign_file(tmp_path):
    log_dir = str(tmp_path)
    for step in (1, 2, 3, 4):
        training_state.write(training_state.path_for(log_dir, step), step,
                             {'inpaint_net/conv1/kernel': np.full((2, 2), step, np.float32)})
    foreign = training_state.path_for(log_dir, 0)  # a user's file that happens to match the name
    with open(foreign, 'wb') as handle:
        handle.write(b'my own notes')
    removed = training_state.remove_older(log_dir, keep=2)
    assert removed == [training_state.path_for(log_dir, 1), training_state.path_for(log_dir, 2)]
    assert sorted(os.listdir(log_dir)) == ['ckpt-0.h5', 'ckpt-3.h5', 'ckpt-4.h5']
    with open(foreign, 'rb') as handle:
        assert handle.read() == b'my own notes'
    assert training_state.read(training_state.path_for(log_dir, 4)).step == 4
    assert training_state.remove_older(log_dir, keep=0) == [training_state.path_for(log_dir, 3)]


def test_a_foreign_file_at_a_checkpoints_path_is_never_replaced(tmp_path):
    """Saving step 5 where a user's `ckpt-5.h5` lies: refused in one line (before: replaced);
    an earlier checkpoint of ours at that path is replaced."""
    path = training_state.path_for(str(tmp_path), 5)
    with open(path, 'wb') as handle:
        handle.write(b'my own notes')
    tensors = {'inpaint_net/conv1/kernel': np.ones((2, 2), np.float32)}
    with pytest.raises(training_state.NotOursError, match='ckpt-5.h5: exists and is not a training '
                       'checkpoint of this project') as info:
        training_state.write(path, 5, tensors)
    assert '\n' not in str(info.value)
    with open(path, 'rb') as handle:
        assert handle.read() == b'my own notes'
    os.remove(path)
    training_state.write(path, 5, tensors)
    training_state.write(path, 5, {'inpaint_net/conv1/kernel': np.zeros((2, 2), np.float32)})
    assert np.all(training_state.read(path).model['inpaint_net/conv1/kernel'] == 0)
    assert os.listdir(tmp_path) == ['ckpt-5.h5']
