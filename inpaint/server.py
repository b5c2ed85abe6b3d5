"""The HTTP server: the web page with a brush, the REST API and a health check.

The command is `python -m inpaint.commands.serve` (`deepfill-serve`). Routes:

    GET  /                 the web page (inpaint/web/, plain HTML/CSS/JS)
    POST /api/v1/inpaint   multipart/form-data with the files `image` (PNG, JPEG, ...) and `mask`
                           (same size; holes by the rule of every command, see the README's
                           masks section: 255 or 1 or any colour on black, or paint on a
                           transparent layer);
                           transparent layer), and for an edge-guided model optionally `edge`
                           (same size; lines by `imageio.edge_lines`: white lines on black, or
                           paint on a transparent layer; only those inside the hole guide it);
                           answers a PNG of the image's size, pixels outside the hole untouched
                           (RGBA in: its alpha kept; 16 bits in: 16 bits out); a mask with no hole
                           or a hole everywhere adds the header X-Inpaint-Warning (one sentence)
    GET  /healthz          {"status", "model", "checkpoint", "widths", "backend", "guided"}

Bad requests are answered with a 4xx status and a JSON body `{"error": "<one sentence>"}`: 400 a
missing, empty or undecodable file, a mask or edge of another size, an edge for a model that is
not guided, an unexpected field; 413 a body over
`--max_body_mb` or an image over `--max_pixels`; 415 a body that is not multipart/form-data.
One model is loaded; requests run on it one at a time (a lock), the others wait; decoding and
encoding run outside the lock, in worker threads, so the server keeps answering meanwhile. The
server binds to 127.0.0.1 unless told otherwise (`bind`): it has no authentication.
"""
import io
import os
import socket
import threading
import warnings

import cv2
import numpy as np

from inpaint.imageio import (EDGE_THRESHOLD, InputError, check_mask_size, decode_image_as_is,
                             edge_lines, mask_holes, mask_warning, swap_rb)

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'web')
API_PATH = '/api/v1/inpaint'
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_BODY_MB = 64
FIELDS = ('image', 'mask')  # the files every request sends
OPTIONAL_FIELDS = ('edge',)  # an edge-guided model's edge image
# Set on an answer whose mask has no hole (the image comes back unchanged) or is a hole
# everywhere (nothing left to condition on): one sentence, as the command line's warning.
WARNING_HEADER = 'X-Inpaint-Warning'


class ApiError(Exception):
    """A request the API refuses: an HTTP status and one sentence for the JSON body."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data, max_pixels, name='image'):
    """Encoded bytes -> RGB(A) uint8 or uint16, with the pixel limit checked before decoding.

    Pixels are those of `imageio.read_image_as_is`, as the command line reads a file (EXIF
    orientation applied, gray repeated, the alpha channel and 16 bits kept for the answer).
    Raises:
        ApiError: 400 empty or undecodable, 413 over `max_pixels`.
    """
    _check_header(data, max_pixels, name)
    try:
        return decode_image_as_is(data, name)
    except InputError as error:
        raise ApiError(400, _sentence(str(error))) from error


def decode_mask(data, max_pixels, name='mask'):
    """Encoded bytes -> bool (H, W), True = hole, by the rule of every command
    (`imageio.mask_holes`: 255 or 1 or any colour on black, or paint on a transparent layer)."""
    return mask_holes(_decode(data, max_pixels, name, cv2.IMREAD_UNCHANGED), name)


def decode_edge(data, max_pixels, threshold=EDGE_THRESHOLD, name='edge'):
    """Encoded bytes -> bool (H, W), True on a line, by the rule of every command
    (`imageio.edge_lines`: white lines on black, or paint on a transparent layer)."""
    return edge_lines(_decode(data, max_pixels, name, cv2.IMREAD_UNCHANGED), threshold, name)


def _check_header(data, max_pixels, name):
    """ApiError 400 for an empty file, 413 for one whose header declares over `max_pixels`."""
    if not data:
        raise ApiError(400, f'{name}: the file is empty; send a PNG or JPEG image.')
    width, height = _header_size(data, name, max_pixels)
    if width * height > max_pixels:
        raise ApiError(413, f'{name}: {width}x{height} is {width * height} pixels, over this '
                            f"server's limit of {max_pixels}; send a smaller image.")


def _decode(data, max_pixels, name, flags):
    _check_header(data, max_pixels, name)
    array = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if array is None or array.size == 0:
        raise ApiError(400, f'{name}: the file cannot be decoded; send a PNG or JPEG image.')
    return array


def _header_size(data, name, max_pixels):
    """(width, height) from the file's header, without decoding its pixels (a small file can
    declare a huge image)."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError as error:  # over Pillow's limit, 2 * MAX_IMAGE_PIXELS
        size = _declared_size(data)  # the file's own size, for the 413 message
        if size is None:
            raise ApiError(413, f'{name}: the header declares over {2 * Image.MAX_IMAGE_PIXELS} '
                                f"pixels, over this server's limit of {max_pixels}; send a "
                                f'smaller image.') from error
        return size
    except Exception as error:  # UnidentifiedImageError, truncated headers, ...
        raise ApiError(400, f'{name}: the file is not a readable image; send a PNG or JPEG '
                            f'image.') from error


def _declared_size(data):
    """(width, height) that a header declares, or None: read by Pillow's format plugin itself,
    as `Image.open` does, without its decompression-bomb check (which refuses the size unsaid)."""
    from PIL import Image
    Image.init()
    for name in Image.ID:  # Pillow's registry of openers, in the order Image.open tries them
        factory, accept = Image.OPEN[name]
        result = not accept or accept(data[:16])
        if not result or isinstance(result, str):
            continue
        try:
            with factory(io.BytesIO(data), None) as image:
                return image.size
        except Exception:  # noqa: BLE001 -- not this format; try the next, as Image.open does
            continue
    return None


def encode_png(image):
    """RGB or RGBA (H, W, 3 or 4), uint8 or uint16 -> PNG bytes (PNG holds both)."""
    ok, encoded = cv2.imencode('.png', swap_rb(image))
    if not ok:
        raise RuntimeError('PNG encoding failed')
    return encoded.tobytes()


class Model:
    """One Inpainter behind a lock: `inpaint` calls run one at a time, in any thread."""

    def __init__(self, inpainter, checkpoint):
        self.inpainter = inpainter
        self.checkpoint = checkpoint
        self.lock = threading.Lock()

    @property
    def guided(self):
        """Whether the model is edge-guided (takes an `edge`)."""
        return self.inpainter.generator.guided

    def inpaint(self, image, mask, edge=None):
        with self.lock:
            return self.inpainter.inpaint(image, mask, edge)

    def health(self):
        import keras
        return {'status': 'ok', 'model': 'DeepFill v2', 'checkpoint': self.checkpoint,
                'widths': {'generator': int(self.inpainter.generator.cnum)},
                'backend': keras.backend.backend(), 'guided': self.guided}


def create_app(model, max_pixels=DEFAULT_MAX_PIXELS, max_body_bytes=DEFAULT_MAX_BODY_MB * 2**20):
    """The Starlette application.

    Args:
        model: a `Model` (an Inpainter and its lock).
        max_pixels: largest width * height accepted for the image and the mask.
        max_body_bytes: largest request body (413 above it, checked while it streams in).
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def index(request):
        return FileResponse(os.path.join(WEB_DIR, 'index.html'))

    async def healthz(request):
        return JSONResponse(model.health())

    async def inpaint(request):
        content_type = request.headers.get('content-type', '')
        if not content_type.startswith('multipart/form-data'):
            raise ApiError(415, f'the body is {content_type or "untyped"}; send multipart/form-data '
                                f'with the files "image" and "mask".')
        try:
            form = await request.form(max_files=8, max_fields=8, max_part_size=max_body_bytes)
        except HTTPException as error:  # python-multipart's complaints, e.g. too many parts
            detail = str(error.detail).rstrip('.').replace('. ', '; ')
            raise ApiError(400, f'the multipart body cannot be read ({detail}); send the files '
                                f'"image" and "mask".') from error
        try:
            unexpected = sorted(set(form.keys()) - set(FIELDS) - set(OPTIONAL_FIELDS))
            if unexpected:
                raise ApiError(400, f'unexpected field "{unexpected[0]}"; send only the files '
                                    f'"image" and "mask" (and "edge" for an edge-guided model).')
            if 'edge' in form and not model.guided:
                from inpaint.generator import NOT_GUIDED  # not at import: it loads Keras
                raise ApiError(400, f'edge: {NOT_GUIDED} (send only "image" and "mask").')
            files = {}
            for name in FIELDS + OPTIONAL_FIELDS:
                part = form.get(name)
                if part is None and name in OPTIONAL_FIELDS:
                    continue
                if part is None:
                    raise ApiError(400, f'the file "{name}" is missing; send multipart/form-data '
                                        f'with the files "image" and "mask".')
                if not isinstance(part, UploadFile):
                    raise ApiError(400, f'"{name}" is a text field; send it as a file '
                                        f'(curl -F {name}=@file.png).')
                files[name] = await part.read()
        finally:
            await form.close()  # the uploads' temporary files
        png, warning = await run_in_threadpool(_inpaint_bytes, model, files['image'],
                                               files['mask'], files.get('edge'), max_pixels)
        headers = {WARNING_HEADER: warning} if warning else None
        return Response(png, media_type='image/png', headers=headers)

    async def api_error(request, error):
        return JSONResponse({'error': error.message}, status_code=error.status)

    async def http_error(request, error):
        messages = {
            404: f'there is nothing at {request.url.path}; the API is POST {API_PATH}.',
            405: f'{request.method} is not allowed on {request.url.path}; see GET / for the page '
                 f'and POST {API_PATH} for the API.',
        }
        message = messages.get(error.status_code, _sentence(str(error.detail)))
        return JSONResponse({'error': message}, status_code=error.status_code,
                            headers=getattr(error, 'headers', None))

    async def server_error(request, error):
        return JSONResponse({'error': f'the server failed on this request ({type(error).__name__}); '
                                      f'it is still running, try again.'}, status_code=500)

    app = Starlette(
        routes=[Route('/', index), Route('/healthz', healthz), Route(API_PATH, inpaint, methods=['POST']),
                Mount('/static', StaticFiles(directory=WEB_DIR), name='static')],
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: server_error})
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    return app


def _inpaint_bytes(model, image_bytes, mask_bytes, edge_bytes, max_pixels):
    """Decodes, inpaints (under the model's lock) and encodes; runs in a worker thread.

    `edge_bytes` is the edge image's file (a guided model's), or None.

    Returns:
        (PNG bytes, the `imageio.mask_warning` sentence for a mask with no hole or a hole
        everywhere, or None).
    """
    image = decode_image(image_bytes, max_pixels)
    mask = decode_mask(mask_bytes, max_pixels)
    edge = None if edge_bytes is None else decode_edge(edge_bytes, max_pixels,
                                                        model.inpainter.edge_threshold)
    try:
        check_mask_size(mask.shape, image.shape, 'mask')
        if edge is not None:
            check_mask_size(edge.shape, image.shape, 'edge', kind='edge image')
    except InputError as error:
        raise ApiError(400, _sentence(str(error))) from error
    warning = mask_warning(mask)
    return encode_png(model.inpaint(image, mask, edge)), warning and _sentence(f'mask: {warning}')


def _sentence(text):
    text = text.strip() or 'the request was refused'
    return text if text.endswith('.') else text + '.'


class _BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, from Content-Length when given, else
    while the body streams in (the endpoint's read raises `ApiError`)."""

    def __init__(self, app, max_bytes):
        self.app = app
        self.max_bytes = max_bytes

    def _error(self):
        return ApiError(413, f'the request body is over this server\'s limit of '
                             f'{self.max_bytes // 2**20} MiB; send smaller files.')

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        length = dict(scope['headers']).get(b'content-length')
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            from starlette.responses import JSONResponse
            response = JSONResponse({'error': self._error().message}, status_code=413,
                                    headers={'Connection': 'close'})
            return await response(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message['type'] == 'http.request':
                received += len(message.get('body', b''))
                if received > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, limited_receive, send)


def bind(host, port):
    """A listening TCP socket on (host, port); port 0 picks a free one.

    Raises:
        OSError: the address cannot be resolved or bound (e.g. the port is in use).
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def make_server(app, sock, verbose=False):
    """A uvicorn server for `app` on a socket from `bind` (run it with `server.run([sock])`)."""
    import uvicorn
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, lifespan='off', access_log=verbose,
                            log_level='info' if verbose else 'warning')
    return uvicorn.Server(config)


def load_model(checkpoint_dir):
    """Loads the checkpoint and warms the network up (traced once: the first request is fast)."""
    from inpaint.inference import Inpainter
    inpainter = Inpainter.from_checkpoint(checkpoint_dir)
    warm = np.zeros((64, 64), bool)
    warm[16:32, 16:32] = True
    inpainter.inpaint(np.full((64, 64, 3), 128, np.uint8), warm)
    return Model(inpainter, checkpoint_dir)
