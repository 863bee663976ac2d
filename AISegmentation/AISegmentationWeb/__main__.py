"""python -m AISegmentationWeb: serve the page (Scripts/aisegmentation web runs this in .venv-web).

Binds 127.0.0.1 on a free port by default and prints the page's URL (with its token) on one line:
``AISegmentation web: http://127.0.0.1:PORT/?secret=TOKEN``. Rendering is offscreen (EGL; Mesa's llvmpipe on a
machine without a GPU), so no display is needed.
"""

import argparse
import logging
import os
import sys

from .Access import DEFAULT_MAX_UPLOAD_MB, TOKEN_ENVIRONMENT, pageUrl, readToken, requireAccessSettings
from .InteractiveAccess import API_KEY_ENVIRONMENT, DEFAULT_INTERACTIVE_SERVER, InteractiveServers, readKeyFile
from .WebsocketLimits import MESSAGE_OVERHEAD_BYTES

URL_LINE_PREFIX = "AISegmentation web: "


def parseArguments(argv):
    parser = argparse.ArgumentParser(prog="aisegmentation web", description=(
        "The browser front end: the same Logic as the Slicer panel and the command line, on trame-slicer."))
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs a token)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one, printed)")
    parser.add_argument("--token-file", metavar="FILE",
                        help="file whose first line is the page's access token: 16 to 256 URL-safe characters "
                        f"(or ${TOKEN_ENVIRONMENT}; default on loopback: a random one)")
    parser.add_argument("--token", help=argparse.SUPPRESS)  # refused: see main()
    parser.add_argument("--interactive-server", action="append", metavar="URL",
                        help="an nnInteractive server the page may reach (repeatable; default "
                        f"{DEFAULT_INTERACTIVE_SERVER}); the page offers no other")
    parser.add_argument("--interactive-api-key-file", metavar="FILE",
                        help="API key for the first --interactive-server, sent to that address only (or "
                        f"${API_KEY_ENVIRONMENT}); users of the page give their own key for another one")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help=f"largest file the page accepts (default {DEFAULT_MAX_UPLOAD_MB} MB)")
    parser.add_argument("--volume", help="volume to open (default: the sample CT)")
    parser.add_argument("--no-sample", action="store_true", help="start with an empty scene")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every action with its time")
    return parser.parse_args(argv)


def main(argv=None):
    args = parseArguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if args.verbose:
        logging.getLogger("AISegmentationWeb").setLevel(logging.INFO)
    try:
        if args.token is not None:
            raise ValueError(f"--token on the command line is visible to every user of this computer (ps): use "
                             f"--token-file FILE or ${TOKEN_ENVIRONMENT}")
        token = requireAccessSettings(args.host, readToken(args.token_file), args.max_upload_mb)
        interactiveServers = InteractiveServers(args.interactive_server, operatorKey=(
            readKeyFile(args.interactive_api_key_file) if args.interactive_api_key_file
            else os.environ.get(API_KEY_ENVIRONMENT)))
    except ValueError as error:
        print(f"aisegmentation web: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # offscreen, no X display
    from trame.app import get_server

    from .Page import Page
    from .WebsocketGuard import installGuards, requireWslinkShape

    try:
        requireWslinkShape()
    except RuntimeError as error:
        print(f"aisegmentation web: {error}", file=sys.stderr)
        return 2

    server = get_server("aisegmentation", client_type="vue3")
    maxUploadBytes = int(args.max_upload_mb * 2**20)
    # trame's own command line is not ours: give it only the token (wslink's key).
    sys.argv = sys.argv[:1]
    server.cli.set_defaults(authKey=token)
    page = Page(server, maxUploadBytes=maxUploadBytes, interactiveServers=interactiveServers)

    @server.controller.add("on_server_bind")
    def guardWebsocket(webApp):
        installGuards(webApp, maxUploadBytes + MESSAGE_OVERHEAD_BYTES)

    if not args.no_sample:
        if args.volume is None:
            page.ctrl.loadSample()
        else:
            page.ctrl.loadStartupPath(os.path.expanduser(args.volume))
    if page.state.error:
        print(f"aisegmentation web: {page.state.error}", file=sys.stderr)
        return 2

    @server.controller.add("on_server_ready")
    def announce(**_):
        print(URL_LINE_PREFIX + pageUrl(args.host, server.port, token), flush=True)

    server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
