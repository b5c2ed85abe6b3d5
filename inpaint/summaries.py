"""TensorBoard event files written without TensorFlow: scalars and PNG images.

An event file is a sequence of TFRecords (length, masked CRC-32C, bytes, masked CRC-32C), each an
`Event` protocol buffer. The few messages needed (Event, Summary, Summary.Value, Summary.Image) are
encoded here by hand, so training logs the same way on every backend. View with
`tensorboard --logdir LOG_DIR` (`pip install tensorboard`).
"""
import os
import socket
import struct
import time

import cv2
import numpy as np


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli) of bytes, as TFRecord framing uses."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value):
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number, wire_type):
    return _varint(number << 3 | wire_type)


def _bytes_field(number, payload):
    return _field(number, 2) + _varint(len(payload)) + payload


def _event(step, summary_values=None, file_version=None):
    """Encodes an `Event` (wall_time 1, step 2, file_version 3, summary 5)."""
    message = _field(1, 1) + struct.pack('<d', time.time()) + _field(2, 0) + _varint(int(step))
    if file_version is not None:
        message += _bytes_field(3, file_version.encode())
    if summary_values is not None:
        message += _bytes_field(5, b''.join(_bytes_field(1, value) for value in summary_values))
    return message


class EventWriter:
    """Appends scalar and image summaries to `<log_dir>/events.out.tfevents.<time>.<host>`.

    Args:
        log_dir: folder (created if missing).
    """

    def __init__(self, log_dir):
        os.makedirs(log_dir, exist_ok=True)
        name = f'events.out.tfevents.{int(time.time())}.{socket.gethostname()}'
        self.path = os.path.join(log_dir, name)
        self._file = open(self.path, 'ab')
        self._write(_event(0, file_version='brain.Event:2'))

    def _write(self, record):
        header = struct.pack('<Q', len(record))
        self._file.write(header + struct.pack('<I', _masked_crc(header)) + record
                         + struct.pack('<I', _masked_crc(record)))

    def scalar(self, tag, value, step):
        """Writes a scalar (`Summary.Value.simple_value`)."""
        value = _bytes_field(1, tag.encode()) + _field(2, 5) + struct.pack('<f', float(value))
        self._write(_event(step, [value]))

    def images(self, tag, images, step, max_outputs=3):
        """Writes images as PNGs (`Summary.Image`), tagged `tag/image/<i>` when there are several.

        Args:
            images: (N, H, W, 3) RGB float in [0, 1] or uint8.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8:
            images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
        values = []
        count = min(len(images), max_outputs)
        for index in range(count):
            ok, png = cv2.imencode('.png', np.ascontiguousarray(images[index][..., ::-1]))
            height, width = images.shape[1:3]
            image = (_field(1, 0) + _varint(height) + _field(2, 0) + _varint(width)
                     + _field(3, 0) + _varint(3) + _bytes_field(4, png.tobytes()))
            name = tag if count == 1 else f'{tag}/image/{index}'
            values.append(_bytes_field(1, name.encode()) + _bytes_field(4, image))
        self._write(_event(step, values))

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()
