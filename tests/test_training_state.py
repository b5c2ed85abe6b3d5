"""inpaint/training_state.py: rotation removes only this project's training checkpoints."""
import os

import numpy as np

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
