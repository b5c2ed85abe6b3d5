"""Serves the web page with a brush, the REST API and a health check (see `inpaint/server.py`).

    python -m inpaint.commands.serve --checkpoint_dir checkpoints/default [--host 127.0.0.1] [--port 8080]

The same command is `deepfill-serve` (installed). Then open http://127.0.0.1:8080 in a browser;
the REST API is POST /api/v1/inpaint (multipart/form-data with the files `image` and `mask`,
and `edge` for an edge-guided model, answered with a PNG), the health check GET /healthz. The
server binds to 127.0.0.1 unless `--host` says otherwise: it has no authentication.

Exit codes: 2 bad flags, an unloadable checkpoint or a port that cannot be bound; otherwise the
server runs until interrupted (0).
"""
import sys

from inpaint import server
from inpaint.commands import run
from inpaint.commands.parsing import VERBOSE_HELP, Parser, UsageError
from inpaint.imageio import InputError

PROG = 'python -m inpaint.commands.serve'


def build_parser(prog=PROG):
    """The server's flags: checkpoint, address and request limits."""
    parser = Parser(prog, __doc__, verbose_help=VERBOSE_HELP + '; also logs every request')
    parser.add_argument('--checkpoint_dir', required=True,
                        help='release folder, checkpoint prefix or train.py log_dir')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default 127.0.0.1: this machine only; '
                             '0.0.0.0 exposes the server, which has no authentication)')
    parser.add_argument('--port', type=int, default=8080, help='port (default 8080; 0 = any free)')
    parser.add_argument('--max_pixels', type=int, default=server.DEFAULT_MAX_PIXELS,
                        help=f'largest image, width * height (default {server.DEFAULT_MAX_PIXELS} '
                             f'= 4096x4096)')
    parser.add_argument('--max_body_mb', type=float, default=server.DEFAULT_MAX_BODY_MB,
                        help=f'largest request body in MiB (default {server.DEFAULT_MAX_BODY_MB})')
    return parser


def main(argv=None, prog=PROG):
    """Serves until interrupted; returns the exit code (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        if args.max_pixels < 1 or args.max_body_mb <= 0:
            raise UsageError('--max_pixels and --max_body_mb must be positive')
    except UsageError as error:
        return parser.fail(error)
    try:  # first, so that a busy port fails before the model's load
        sock = server.bind(args.host, args.port)
    except OSError as error:
        return parser.fail(f'cannot listen on {args.host}:{args.port} ({error.strerror or error}); '
                           f'choose another --port or --host')
    from inpaint.checkpoint import CheckpointError
    try:
        model = server.load_model(args.checkpoint_dir)
    except (CheckpointError, InputError) as error:
        sock.close()
        return parser.fail(error)
    app = server.create_app(model, args.max_pixels, int(args.max_body_mb * 2**20))
    host, port = sock.getsockname()[:2]
    health = model.health()
    url_host = f'[{host}]' if ':' in host else host
    guided = ', edge-guided' if health['guided'] else ''
    print(f'DeepFill v2 from {args.checkpoint_dir} (generator width '
          f'{health["widths"]["generator"]}{guided}, {health["backend"]}) on '
          f'http://{url_host}:{port}/ (Ctrl+C stops)', flush=True)
    server.make_server(app, sock, args.verbose).run(sockets=[sock])
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
