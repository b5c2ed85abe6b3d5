"""The web page (inpaint/web/) in a real browser: Debian's headless Chromium driven by Playwright.

The photo (128x96) is displayed enlarged several times, so the strokes' image coordinates go
through the page's screen -> image mapping. What the page sends is parsed from the request and
checked at the photo's own resolution; what it downloads is checked against the photo.

Regenerate the README's screenshots (default model, bundled example; the guide brush on the
golden guided weights, before inpainting: they are random, so their fill shows nothing):
    python tests/test_web.py --checkpoint_dir checkpoints/default --image examples/input.png \
        --output docs/web_app.png
    python tests/test_web.py --checkpoint_dir tests/data/golden_guided_small/checkpoint_dir \
        --image examples/input.png --output docs/web_guided.png --guide --palette
"""
import os
import sys

import cv2
import numpy as np
import pytest

CHROMIUM = '/usr/bin/chromium'
# No network here but the package registries: nothing in the browser may try to reach out.
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
BRUSH = 40  # the page's default brush diameter, in screen pixels


@pytest.fixture(scope='module')
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope='module')
def url(served_model):
    from conftest import live_server
    from inpaint.server import create_app
    with live_server(create_app(served_model)) as base:
        yield base + '/'


@pytest.fixture(scope='module')
def photo_path(tmp_path_factory):
    from conftest import golden_case
    image = cv2.imread(golden_case('rocket256')['input'])[80:176, 64:192]  # 96 x 128, BGR
    path = tmp_path_factory.mktemp('web') / 'rocket.png'
    cv2.imwrite(str(path), image)
    return path


def open_page(context, url, photo_path):
    """Opens the page, loads the photo; returns (page, errors list, overlay box, photo RGB)."""
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda error: errors.append(str(error)))
    page.on('console', lambda message: message.type == 'error' and errors.append(message.text))
    page.goto(url)
    page.set_input_files('#file', str(photo_path))
    page.wait_for_selector('body[data-state="ready"]')
    box = page.locator('#overlay').bounding_box()
    photo = cv2.imread(str(photo_path))[:, :, ::-1]
    return page, errors, box, photo


def screen(box, photo, x, y):
    """Image pixel (x, y) -> the centre of its displayed square, in page coordinates."""
    return (box['x'] + (x + 0.5) * box['width'] / photo.shape[1],
            box['y'] + (y + 0.5) * box['height'] / photo.shape[0])


def recorded(model, monkeypatch):
    """What the server's model is called with, per request: [(image RGB, mask bool (H, W),
    edge bool (H, W) or None)]; `.results` the results, in order.

    (Playwright cannot show a multipart body holding files, so the server side is read.)"""
    class Calls(list):
        results = []
    calls = Calls()
    calls.results = []
    inpaint = model.inpainter.inpaint

    def recording(image, mask, edge=None):
        calls.append((image, mask, edge))
        calls.results.append(inpaint(image, mask, edge))
        return calls.results[-1]

    monkeypatch.setattr(model.inpainter, 'inpaint', recording)
    return calls


@pytest.fixture
def received(served_model, monkeypatch):
    return recorded(served_model, monkeypatch)


def inpaint_and_capture(page, received):
    """Clicks Inpaint; once the result is shown, returns what the server was given (image,
    mask, edge)."""
    count = len(received)
    page.click('#inpaint')
    page.wait_for_selector('body[data-state="done"]')
    assert len(received) == count + 1
    return received[-1]


def distance_to_segment(shape, start, end):
    """Distance of every pixel centre to the segment start-end (image coordinates)."""
    y, x = np.mgrid[:shape[0], :shape[1]].astype(np.float64)
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy))


def test_paint_inpaint_download_with_a_mouse(browser, url, photo_path, received, tmp_path):
    context = browser.new_context(viewport={'width': 900, 'height': 700}, accept_downloads=True)
    page, errors, box, photo = open_page(context, url, photo_path)
    scale = box['width'] / photo.shape[1]
    assert scale > 3 and abs(box['height'] / photo.shape[0] - scale) < 0.05  # enlarged, not stretched
    assert page.locator('#inpaint').is_disabled()

    start, end = (20, 30), (100, 62)
    page.mouse.move(*screen(box, photo, *start))
    page.mouse.down()
    page.mouse.move(*screen(box, photo, *end), steps=15)
    page.mouse.up()
    assert page.locator('#overlay').get_attribute('data-pointer-type') == 'mouse'
    image, mask, edge = inpaint_and_capture(page, received)
    assert edge is None  # no guide lines are sent to a model that is not guided
    page.wait_for_selector('body[data-guided="false"]')
    assert page.locator('#guide').is_disabled()

    # The server got the photo, and the mask at the photo's resolution, the stroke's width
    # converted from screen to image pixels.
    assert np.array_equal(image, photo)
    assert mask.shape == photo.shape[:2]
    radius = BRUSH / scale / 2
    distance = distance_to_segment(mask.shape, start, end)
    assert mask[distance <= radius - 1].all()
    assert not mask[distance >= radius + 1].any()

    with page.expect_download() as download:
        page.click('#download')
    assert download.value.suggested_filename == 'rocket_inpainted.png'
    result = cv2.imread(download.value.path())[:, :, ::-1]
    assert result.shape == photo.shape
    assert np.array_equal(result[~mask], photo[~mask])  # equal elsewhere
    under = distance <= radius - 1
    assert np.mean(np.any(result[under] != photo[under], axis=-1)) > 0.8  # differs under the stroke

    page.screenshot(path=str(tmp_path / 'web_app.png'))
    assert cv2.imread(str(tmp_path / 'web_app.png')) is not None
    page.click('#compare')  # before / after
    assert page.locator('#compare').get_attribute('aria-pressed') == 'true'
    page.click('#compare')
    assert page.locator('#compare').get_attribute('aria-pressed') == 'false'
    assert errors == []
    context.close()


def pen_stroke(cdp, points):
    """A stroke with a pen: Chromium's input layer, pointerType 'pen'."""
    common = {'button': 'left', 'pointerType': 'pen', 'force': 0.5}
    cdp.send('Input.dispatchMouseEvent', {'type': 'mousePressed', 'x': points[0][0], 'y': points[0][1],
                                          'buttons': 1, 'clickCount': 1, **common})
    for x, y in points[1:]:
        cdp.send('Input.dispatchMouseEvent', {'type': 'mouseMoved', 'x': x, 'y': y, 'buttons': 1, **common})
    cdp.send('Input.dispatchMouseEvent', {'type': 'mouseReleased', 'x': points[-1][0],
                                          'y': points[-1][1], 'buttons': 0, 'clickCount': 1, **common})


def touch_stroke(cdp, points):
    """A stroke with one finger on a touch screen."""
    cdp.send('Input.dispatchTouchEvent', {'type': 'touchStart', 'touchPoints': [{'x': points[0][0], 'y': points[0][1]}]})
    for x, y in points[1:]:
        cdp.send('Input.dispatchTouchEvent', {'type': 'touchMove', 'touchPoints': [{'x': x, 'y': y}]})
    cdp.send('Input.dispatchTouchEvent', {'type': 'touchEnd', 'touchPoints': []})


def line(box, photo, start, end, steps=12):
    return [screen(box, photo, start[0] + (end[0] - start[0]) * i / steps,
                   start[1] + (end[1] - start[1]) * i / steps) for i in range(steps + 1)]


def test_pen_touch_eraser_undo_and_clear(browser, url, photo_path, received):
    context = browser.new_context(viewport={'width': 800, 'height': 600}, has_touch=True)
    page, errors, box, photo = open_page(context, url, photo_path)
    cdp = context.new_cdp_session(page)
    pen_stroke(cdp, line(box, photo, (10, 20), (118, 20)))
    assert page.locator('#overlay').get_attribute('data-pointer-type') == 'pen'
    touch_stroke(cdp, line(box, photo, (10, 70), (118, 70)))
    assert page.locator('#overlay').get_attribute('data-pointer-type') == 'touch'
    page.click('#eraser')
    page.mouse.move(*screen(box, photo, 64, 2))
    page.mouse.down()
    page.mouse.move(*screen(box, photo, 64, 93), steps=15)
    page.mouse.up()

    _, mask, _ = inpaint_and_capture(page, received)
    assert mask[20, 10:40].all() and mask[20, 90:118].all()  # the pen's line
    assert mask[70, 10:40].all() and mask[70, 90:118].all()  # the finger's line
    assert not mask[:, 62:67].any()  # erased across both
    assert not mask[40:50].any()  # nothing between the lines

    page.click('#undo')  # the eraser's stroke
    _, mask, _ = inpaint_and_capture(page, received)
    assert mask[20, 10:118].all() and mask[70, 10:118].all()

    page.click('#clear')
    assert page.locator('#inpaint').is_disabled()
    page.click('#undo')  # clearing is undone too
    assert page.locator('#inpaint').is_enabled()
    assert errors == []
    context.close()


def test_an_api_error_is_shown_on_the_page(browser, url, tmp_path):
    bad = tmp_path / 'tiny.png'
    cv2.imwrite(str(bad), np.full((64, 64, 3), 200, np.uint8))
    context = browser.new_context(viewport={'width': 800, 'height': 600})
    page, errors, box, photo = open_page(context, url, bad)
    page.route('**/api/v1/inpaint', lambda route: route.fulfill(
        status=413, content_type='application/json',
        body='{"error": "image: 9000x9000 is 81000000 pixels, over this server\'s limit."}'))
    page.mouse.click(*screen(box, photo, 30, 30))
    page.click('#inpaint')
    page.wait_for_selector('body[data-state="error"]')
    assert 'over this server' in page.inner_text('#status')
    assert page.locator('#inpaint').is_enabled()  # the user can try again
    context.close()


@pytest.fixture(scope='module')
def guided_model():
    from conftest import GUIDED_CHECKPOINT
    from inpaint.server import load_model
    return load_model(GUIDED_CHECKPOINT)


@pytest.fixture(scope='module')
def guided_url(guided_model):
    from conftest import live_server
    from inpaint.server import create_app
    with live_server(create_app(guided_model)) as base:
        yield base + '/'


def drag(page, box, photo, start, end, steps=15):
    page.mouse.move(*screen(box, photo, *start))
    page.mouse.down()
    page.mouse.move(*screen(box, photo, *end), steps=steps)
    page.mouse.up()


def shown_alpha(page, canvas, x, y):
    """The opacity of a page canvas' pixel (x, y), in image pixels."""
    return page.evaluate(f"document.getElementById('{canvas}').getContext('2d')"
                         f".getImageData({x}, {y}, 1, 1).data[3]")


def test_the_guide_brush_sends_edge_lines_that_change_the_fill(browser, guided_url, guided_model,
                                                              photo_path, monkeypatch):
    """On an edge-guided model: a hole, inpainted; then a guide line across it: the request
    carries the line as `edge` (the hole unchanged), it is shown inside the hole only, and the
    fill changes along it."""
    from inpaint.imageio import edge_lines
    received = recorded(guided_model, monkeypatch)
    context = browser.new_context(viewport={'width': 900, 'height': 700})
    page, errors, box, photo = open_page(context, guided_url, photo_path)
    page.wait_for_selector('body[data-guided="true"]')
    page.fill('#size', '100')
    page.dispatch_event('#size', 'input')
    drag(page, box, photo, (10, 48), (118, 48))  # a band about 25 image pixels high
    _, hole, edge = inpaint_and_capture(page, received)
    assert edge is None and hole[40:57, 20:108].all() and not hole[:30].any()
    before = received.results[-1]

    page.click('#guide')
    assert page.locator('#size').input_value() == '4'  # the guide keeps its own, thin size
    drag(page, box, photo, (64, 20), (64, 76))  # from above the hole to below it
    assert shown_alpha(page, 'guides', 64, 48) > 0 and shown_alpha(page, 'guides', 64, 24) == 0
    _, hole_again, edge = inpaint_and_capture(page, received)
    assert np.array_equal(hole_again, hole) and edge is not None
    lines = edge_lines(edge)
    assert lines[22:75, 62:67].any(axis=1).all()  # sent whole; the server keeps the hole's part
    assert not lines[:, :60].any() and not lines[:, 69:].any() and not lines[:18].any()
    after = received.results[-1]
    assert np.array_equal(after[~hole], before[~hole])
    near = hole & (np.abs(np.arange(hole.shape[1]) - 64) <= 6)[None, :]
    assert np.mean(np.any(after[near] != before[near], axis=-1)) > 0.5  # changed along the line
    assert errors == []
    context.close()


def _screenshot(argv):
    """Writes a README screenshot: the example photo with a post in the water removed, or
    (`--guide`) the house's front painted as the hole with guide lines sketching its gable and
    door, before inpainting."""
    import argparse
    import time

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.dirname(here), here]  # this checkout's inpaint, and conftest
    from inpaint import commands
    commands.quiet_tensorflow([])
    from conftest import live_server
    from inpaint.server import create_app, load_model
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=_screenshot.__doc__)
    parser.add_argument('--checkpoint_dir', required=True)
    parser.add_argument('--image', required=True)
    parser.add_argument('--output', required=True)
    parser.add_argument('--guide', action='store_true',
                        help='an edge-guided model: draw guide lines and stop before inpainting')
    parser.add_argument('--palette', action='store_true',
                        help='write 256 colours (fast octree, dithered): a quarter of the bytes')
    args = parser.parse_args(argv)
    photo = cv2.imread(args.image)[:, :, ::-1]
    with live_server(create_app(load_model(args.checkpoint_dir))) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={'width': 1000, 'height': 760})
        page.goto(base + '/')
        page.set_input_files('#file', args.image)
        page.wait_for_selector('body[data-state="ready"]')
        box = page.locator('#overlay').bounding_box()
        page.fill('#size', '84')
        page.dispatch_event('#size', 'input')
        if not args.guide:
            drag(page, box, photo, (111, 166), (110, 255), steps=20)
            page.click('#inpaint')
            page.wait_for_selector('body[data-state="done"]')
        else:
            page.wait_for_selector('body[data-guided="true"]')
            for y in (72, 92, 112, 130):
                drag(page, box, photo, (202, y), (276, y), steps=20)
            page.click('#guide')
            page.fill('#size', '6')
            page.dispatch_event('#size', 'input')
            for stroke in ([(200, 96), (239, 64), (279, 96)], [(224, 136), (224, 108), (252, 108),
                                                                (252, 136)]):
                page.mouse.move(*screen(box, photo, *stroke[0]))
                page.mouse.down()
                for point in stroke[1:]:
                    page.mouse.move(*screen(box, photo, *point), steps=15)
                page.mouse.up()
        page.mouse.move(box['x'] + box['width'] / 2, box['y'] + box['height'] + 30)  # off the photo
        time.sleep(0.2)
        page.screenshot(path=args.output)
        browser.close()
    if args.palette:
        from PIL import Image
        with Image.open(args.output) as shot:
            shot = shot.convert('RGB').quantize(256, Image.Quantize.FASTOCTREE,
                                                dither=Image.Dither.FLOYDSTEINBERG)
        shot.save(args.output, optimize=True)
    print(f'wrote {args.output}')


if __name__ == '__main__':
    _screenshot(sys.argv[1:])
