"""inpaint/server.py and its command: the REST API through Starlette's test client and on
loopback, bad requests, the mask rule, concurrency, the command line. Golden checkpoint (width 8), images of 64-96 px."""
import concurrent.futures
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest

from conftest import GOLDEN_CHECKPOINT, golden_case, live_server
from inpaint import server as serve
from inpaint.commands import serve as serve_command
from inpaint.imageio import read_image

import httpx2
from starlette.testclient import TestClient

API = serve.API_PATH


def png(array):
    """RGB(A) or gray uint8 -> PNG bytes (channels in RGB order)."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    return cv2.imencode('.png', array)[1].tobytes()


def decode(data):
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.fixture(scope='module')
def photo():
    """A 72x96 crop of a golden input (odd to the network's grid of 8 in one dimension)."""
    return np.ascontiguousarray(read_image(golden_case('rocket256')['input'])[100:172, 80:176])


def box_mask(shape, top=20, left=30, height=24, width=30):
    mask = np.zeros(shape[:2], bool)
    mask[top:top + height, left:left + width] = True
    return mask


@pytest.fixture(scope='module')
def client(served_model):
    return TestClient(serve.create_app(served_model), raise_server_exceptions=False)


def post(client, image=None, mask=None, **extra):
    files = {name: (f'{name}.png', data, 'image/png')
             for name, data in (('image', image), ('mask', mask)) if data is not None}
    files.update(extra)
    return client.post(API, files=files)


def assert_error(response, status, words):
    """A 4xx with a JSON body holding exactly one sentence that contains `words`."""
    assert response.status_code == status, response.text
    assert response.headers['content-type'] == 'application/json'
    body = response.json()
    assert list(body) == ['error']
    message = body['error']
    assert words in message, message
    assert message.endswith('.') and '\n' not in message and message.count('. ') == 0, message


def test_healthz(client):
    import keras
    body = client.get('/healthz').json()
    assert body == {'status': 'ok', 'model': 'DeepFill v2', 'checkpoint': GOLDEN_CHECKPOINT,
                    'widths': {'generator': 8}, 'backend': keras.backend.backend(), 'guided': False}


def test_readmes_healthz_sample_is_what_the_default_checkpoint_answers():
    """The README's sample answer of /healthz for checkpoints/default (it said generator 16)."""
    import json
    import os
    from conftest import REPO
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as handle:
        lines = handle.read().splitlines()
    sample = json.loads(lines[lines.index('curl http://127.0.0.1:8080/healthz') + 1].lstrip('# '))
    with open(os.path.join(REPO, 'checkpoints', 'default', 'deepfill.json'), encoding='utf-8') as handle:
        width = json.load(handle)['cnum_generator']
    assert sample['checkpoint'] == 'checkpoints/default' and sample['widths'] == {'generator': width}
    assert list(sample) == ['status', 'model', 'checkpoint', 'widths', 'backend', 'guided']
    assert sample['guided'] is False  # checkpoints/default is not edge-guided


def test_page_and_its_files_are_served(client):
    page = client.get('/')
    assert page.status_code == 200 and page.headers['content-type'].startswith('text/html')
    for asset in ('static/app.js', 'static/style.css'):
        assert asset in page.text
        assert client.get('/' + asset).status_code == 200


def test_valid_request_changes_pixels_inside_the_hole_only(client, served_model, photo):
    mask = box_mask(photo.shape)
    response = post(client, png(photo), png(mask.astype(np.uint8) * 255))
    assert response.status_code == 200 and response.headers['content-type'] == 'image/png'
    result = decode(response.content)
    assert result.shape == photo.shape
    assert np.array_equal(result[~mask], photo[~mask])
    assert np.mean(np.any(result[mask] != photo[mask], axis=-1)) > 0.5  # the hole is filled
    assert np.array_equal(result, served_model.inpainter.inpaint(photo, mask))  # the library's result


@pytest.mark.parametrize('encoding', ['gray_255', 'gray_1', 'blue_channel', 'rgba_alpha',
                                      'black_on_transparent', 'jpeg_noise', 'jpeg_image'])
def test_mask_rule_is_the_commands_rule(client, served_model, photo, encoding):
    """The rule of every command (`imageio.mask_holes`): 255 or 1 or any colour on black, or
    paint on a transparent layer, is a hole; JPEG noise around 0 is not."""
    hole = box_mask(photo.shape)
    image = png(photo)
    if encoding == 'gray_255':
        mask = png(hole.astype(np.uint8) * 255)
    elif encoding == 'gray_1':  # a 0/1 mask
        mask = png(hole.astype(np.uint8))
    elif encoding == 'blue_channel':  # blue strokes on black
        colour = np.zeros(photo.shape, np.uint8)
        colour[hole, 2] = 255
        mask = png(colour)
    elif encoding == 'rgba_alpha':  # white everywhere, but only the hole is opaque
        rgba = np.full(photo.shape[:2] + (4,), 255, np.uint8)
        rgba[..., 3] = hole * 255
        mask = png(rgba)
    elif encoding == 'black_on_transparent':  # the colour of the paint does not matter
        rgba = np.zeros(photo.shape[:2] + (4,), np.uint8)
        rgba[..., 3] = hole * 255
        mask = png(rgba)
    elif encoding == 'jpeg_noise':  # faint values outside the hole, as a JPEG leaves them
        gray = hole.astype(np.uint8) * 250
        gray[::3, ::5] = np.where(hole[::3, ::5], 250, 9)
        mask = png(gray)
    else:  # a JPEG image: the result is computed from the server's own decode
        image = cv2.imencode('.jpg', photo[:, :, ::-1])[1].tobytes()
        mask = png(hole.astype(np.uint8) * 255)
    response = post(client, image, mask)
    assert response.status_code == 200, response.text
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert np.array_equal(decode(response.content), served_model.inpainter.inpaint(decoded, hole))


def bomb_png(width, height):
    """A PNG whose header declares width x height but holds no pixel data."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IEND', b'')


def bad_request(kind, photo):
    """(files for `post`, expected status, words in the error) for one kind of bad request."""
    image, mask = png(photo), png(box_mask(photo.shape).astype(np.uint8) * 255)
    return {
        'missing_image': (dict(mask=mask), 400, 'the file "image" is missing'),
        'missing_mask': (dict(image=image), 400, 'the file "mask" is missing'),
        'empty_image': (dict(image=b'', mask=mask), 400, 'image: the file is empty'),
        'corrupt_image': (dict(image=b'\x89PNG but not really', mask=mask), 400,
                          'image: the file is not a readable image'),
        'truncated_image': (dict(image=image[:len(image) // 2], mask=mask), 400,
                            'image: cannot decode the image'),
        'corrupt_mask': (dict(image=image, mask=b'GIF89a?'), 400, 'mask: the file is not a readable'),
        'mask_size': (dict(image=image, mask=png(np.zeros((10, 12), np.uint8))), 400,
                      "mask: mask is 12x10 but the image is 96x72; give a mask of the image's size."),
        'huge_header': (dict(image=bomb_png(5000, 4000), mask=mask), 413,
                        'image: 5000x4000 is 20000000 pixels'),
        'bomb_header': (dict(image=bomb_png(50000, 40000), mask=mask), 413,  # over Pillow's limit
                        "image: 50000x40000 is 2000000000 pixels, over this server's limit of 16777216"),
        'extra_field': (dict(image=image, mask=mask, other=('x.png', b'1', 'image/png')), 400,
                        'unexpected field "other"'),
        'edge_for_unguided': (dict(image=image, mask=mask, edge=('e.png', mask, 'image/png')), 400,
                              'edge: an edge was given, but this generator is not guided'),
    }[kind]


BAD_KINDS = ['missing_image', 'missing_mask', 'empty_image', 'corrupt_image', 'truncated_image',
             'corrupt_mask', 'mask_size', 'huge_header', 'bomb_header', 'extra_field',
             'edge_for_unguided']


@pytest.mark.parametrize('kind', BAD_KINDS)
def test_bad_request_gets_4xx_json_then_the_next_good_request_works(client, photo, kind):
    files, status, words = bad_request(kind, photo)
    extra = {k: v for k, v in files.items() if k not in ('image', 'mask')}
    assert_error(post(client, files.get('image'), files.get('mask'), **extra), status, words)
    good = post(client, png(photo), png(box_mask(photo.shape).astype(np.uint8) * 255))
    assert good.status_code == 200


def test_requests_that_are_not_multipart_files(client, photo):
    assert_error(client.post(API, content=png(photo), headers={'content-type': 'image/png'}),
                 415, 'the body is image/png; send multipart/form-data')
    assert_error(client.post(API, data={'image': 'x', 'mask': 'y'}), 415,
                 'application/x-www-form-urlencoded')
    assert_error(client.post(API, files={'image': (None, b'abc'), 'mask': (None, b'def')}), 400,
                 '"image" is a text field')
    many = {f'f{i}': (f'{i}.png', b'x', 'image/png') for i in range(9)}
    assert_error(client.post(API, files=many), 400, 'the multipart body cannot be read (Too many files;')
    assert_error(client.get(API), 405, 'GET is not allowed on /api/v1/inpaint')
    assert_error(client.get('/nothing/here'), 404, 'there is nothing at /nothing/here')


def test_pixel_and_body_limits(served_model, photo):
    small = TestClient(serve.create_app(served_model, max_pixels=64 * 64, max_body_bytes=40_000))
    mask = png(box_mask(photo.shape).astype(np.uint8) * 255)
    assert_error(post(small, png(photo), mask), 413,
                 "image: 96x72 is 6912 pixels, over this server's limit of 4096")
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), np.uint8)  # ~49 kB as PNG
    assert_error(post(small, png(noise), mask), 413, "the request body is over this server's limit")

    def chunks():  # no Content-Length: the limit is counted while the body streams in
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for _ in range(50):
            yield b'0' * 1000
    response = small.post(API, content=chunks(), headers={'content-type': 'multipart/form-data; boundary=b'})
    assert_error(response, 413, "the request body is over this server's limit")
    crop = photo[:48, :48]
    assert post(small, png(crop), png(box_mask(crop.shape, 10, 10, 10, 10).astype(np.uint8))).status_code == 200


def test_a_failing_model_answers_500_and_the_server_goes_on(served_model, photo, monkeypatch):
    client = TestClient(serve.create_app(served_model), raise_server_exceptions=False)
    mask = png(box_mask(photo.shape).astype(np.uint8) * 255)
    with monkeypatch.context() as patch:
        patch.setattr(served_model.inpainter, 'inpaint', lambda *a: 1 / 0)
        response = post(client, png(photo), mask)
    assert response.status_code == 500 and 'ZeroDivisionError' in response.json()['error']
    assert post(client, png(photo), mask).status_code == 200


def test_20_concurrent_requests_on_loopback_run_one_at_a_time(served_model, photo, monkeypatch):
    masks = [box_mask(photo.shape, top=2 * i, left=3 * i, height=12, width=14) for i in range(20)]
    expected = [served_model.inpainter.inpaint(photo, m) for m in masks]
    running, most, guard = [0], [0], threading.Lock()
    inpaint = served_model.inpainter.inpaint

    def counted(image, mask, edge=None):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return inpaint(image, mask, edge)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(served_model.inpainter, 'inpaint', counted)
    with live_server(serve.create_app(served_model)) as url, httpx2.Client(timeout=60) as http:
        def request(i):
            return http.post(url + API, files={'image': ('i.png', png(photo)),
                                               'mask': ('m.png', png(masks[i].astype(np.uint8) * 255))})
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(request, range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    for response, want in zip(responses, expected):
        assert np.array_equal(decode(response.content), want)  # each got its own mask's result
    assert most[0] == 1  # the lock: never two inferences at once


def test_command_line_errors_exit_2_with_one_line(tmp_path, capsys):
    assert serve_command.main(['--checkpoint_dir', str(tmp_path / 'missing'), '--port', '0']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f'{serve_command.PROG}: error:') and 'missing' in err
    busy = serve.bind('127.0.0.1', 0)
    try:
        port = busy.getsockname()[1]
        assert serve_command.main(['--checkpoint_dir', str(tmp_path), '--port', str(port)]) == 2
        err = capsys.readouterr().err.strip()
        assert f'cannot listen on 127.0.0.1:{port}' in err and len(err.splitlines()) == 1
    finally:
        busy.close()
    assert serve_command.main(['--checkpoint_dir', 'x', '--max_pixels', '0']) == 2


def test_binds_to_loopback_by_default():
    args = serve_command.build_parser().parse_args(['--checkpoint_dir', 'x'])
    assert (args.host, args.port, args.max_pixels) == ('127.0.0.1', 8080, 4096 * 4096)


def test_grey_image_comes_back_grey(client, photo):
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    hole = box_mask(photo.shape)
    response = post(client, png(grey), png(hole.astype(np.uint8) * 255))
    assert response.status_code == 200, response.text
    result = decode(response.content)
    assert np.array_equal(result[..., 0], result[..., 1]) and np.array_equal(result[..., 1], result[..., 2])
    assert np.array_equal(result[~hole, 0], grey[~hole])
    assert np.mean(result[hole, 0] != grey[hole]) > 0.5


def test_rgba_and_16_bit_images_come_back_as_they_were_sent(client, photo):
    """An RGBA PNG is answered RGBA with its alpha unchanged, a 16-bit PNG with 16 bits (its known
    pixels exactly); before, both came back 8-bit RGB."""
    mask = box_mask(photo.shape)
    plain = decode(post(client, png(photo), png(mask.astype(np.uint8) * 255)).content)
    alpha = np.full(photo.shape[:2], 200, np.uint8)
    alpha[:, :10] = 0
    response = post(client, png(np.dstack([photo, alpha])), png(mask.astype(np.uint8) * 255))
    answer = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert response.status_code == 200 and answer.shape == photo.shape[:2] + (4,)
    assert np.array_equal(answer[..., 3], alpha) and np.array_equal(answer[..., 2::-1], plain)
    deep = photo.astype(np.uint16) * 257
    response = post(client, png(deep), png(mask.astype(np.uint8) * 255))
    answer = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert answer.dtype == np.uint16 and np.array_equal(answer[~mask], deep[~mask])
    assert np.array_equal(answer[mask], plain[mask].astype(np.uint16) * 257)


@pytest.mark.parametrize('holes, words', [
    ('none', 'mask: the mask has no hole; the image comes back unchanged.'),
    ('all', 'mask: the mask is a hole everywhere: no pixel is left to condition on'),
])
def test_a_mask_with_no_hole_or_all_hole_is_answered_with_a_warning_header(client, photo, holes, words):
    """As the command line warns (before, the API returned the image unchanged without a word)."""
    mask = np.zeros(photo.shape[:2], np.uint8) if holes == 'none' else np.full(photo.shape[:2], 255, np.uint8)
    response = post(client, png(photo), png(mask))
    assert response.status_code == 200 and response.headers['content-type'] == 'image/png'
    assert response.headers[serve.WARNING_HEADER].startswith(words)
    if holes == 'none':
        assert np.array_equal(decode(response.content), photo)
    good = post(client, png(photo), png(box_mask(photo.shape).astype(np.uint8) * 255))
    assert serve.WARNING_HEADER not in good.headers


# --- an edge-guided model: the optional `edge` file ----------------------------------------

@pytest.fixture(scope='module')
def guided_model():
    from conftest import GUIDED_CHECKPOINT
    return serve.load_model(GUIDED_CHECKPOINT)


def test_a_guided_model_takes_an_edge_by_the_one_rule(guided_model):
    """/healthz says guided; `edge` is decoded as the command line reads an edge image (white
    lines on black, or paint on a transparent layer); without one the fill has no lines; an
    edge of another size or that cannot be decoded is a 400."""
    from conftest import GUIDED_GOLDEN
    from inpaint.imageio import edge_lines
    client = TestClient(serve.create_app(guided_model), raise_server_exceptions=False)
    assert client.get('/healthz').json()['guided'] is True
    folder = f'{GUIDED_GOLDEN}/motorcycle184x264'
    crop = (slice(20, 127), slice(60, 197))
    photo = read_image(f'{folder}/input.png')[crop]
    hole = cv2.imread(f'{folder}/mask.png', cv2.IMREAD_GRAYSCALE)[crop] > 127
    lines = edge_lines(read_image(f'{folder}/edge.png')[crop])
    assert (lines & hole).any()
    image, mask = png(photo), png(hole.astype(np.uint8) * 255)
    library = guided_model.inpainter.inpaint
    painted = np.zeros(photo.shape[:2] + (4,), np.uint8)  # black strokes on a transparent layer
    painted[lines, 3] = 255
    for edge in (png(lines.astype(np.uint8) * 255), png(painted)):
        response = post(client, image, mask, edge=('edge.png', edge, 'image/png'))
        assert response.status_code == 200, response.text
        assert np.array_equal(decode(response.content), library(photo, hole, lines))
    plain = post(client, image, mask)
    assert np.array_equal(decode(plain.content), library(photo, hole))
    assert not np.array_equal(decode(plain.content), library(photo, hole, lines))  # lines matter
    assert_error(post(client, image, mask, edge=('e.png', png(np.zeros((10, 12), np.uint8)), 'image/png')),
                 400, "edge: edge image is 12x10 but the image is 137x107; give an edge image of "
                      "the image's size.")
    assert_error(post(client, image, mask, edge=('e.png', b'GIF89a?', 'image/png')), 400,
                 'edge: the file is not a readable image')
