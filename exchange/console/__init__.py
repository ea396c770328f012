"""The web console: pages served by the exchange itself under ``/console``.

Server-rendered HTML (``templates/``) plus small vanilla scripts and styles (``static/``),
shipped in the package: nothing to build, no Node. A browser signs in with an API key and then
holds a signed session cookie; the pages' scripts call the same JSON API (``/v1``) with it
(``exchange.auth.sessions``). docs/console.md is the user's guide.
"""

from exchange.console.assets import static_file
from exchange.console.pages import ConsoleController

CONSOLE_ROUTES = [ConsoleController, static_file]

__all__ = ["CONSOLE_ROUTES"]
