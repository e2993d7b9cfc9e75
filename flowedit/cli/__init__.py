"""The ``flowedit`` command line: one edit (``edit``), a batch file (``run``), a grid (``sweep``), the families
(``models``).

Bad input (settings, batch file, image, output path, device, unloadable model) exits with status 2 and one line on
stderr, before any model is loaded where possible; ``flowedit run`` exits with 1 if any edit failed and lists them;
Ctrl-C exits with 130 and leaves no partial output.

    parser.py     the options, derived from :class:`~flowedit.models.EditSettings` and
                  :class:`~flowedit.media.ImageLimits`
    context.py    what every command needs, derived once from its options (limits, device, dtype, family)
    commands.py   edit, run, sweep, models: each a request (or many) through :func:`flowedit.runs.edit_to_file`
    launch.py     several processes of one run (accelerate, torchrun)
"""

from __future__ import annotations

import os
import sys
import warnings

from .._text import bounded

__all__ = ["main"]

def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"flowedit: warning: {bounded(str(message))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from .parser import parser

    # transformers and diffusers log warnings meant for developers (optional image processors, deprecated
    # arguments, prompts cut to the text encoder's length, one line per call): keep the console readable.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    try:
        args = parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line each, no source excerpt
            warnings.simplefilter("ignore", FutureWarning)  # deprecations inside libraries: not the user's to fix
            return args.run(args)
    except KeyboardInterrupt:
        print("flowedit: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as err:
        print(f"flowedit: error: {bounded(str(err)) or type(err).__name__}", file=sys.stderr)
        return 2
    except (RuntimeError, FloatingPointError) as err:  # e.g. CUDA out of memory, NaN from the model
        print(f"flowedit: error: {type(err).__name__}: {bounded(str(err))}", file=sys.stderr)
        return 1
    except Exception as err:  # a failure no check foresaw: one line still, and a way to report it
        print(
            f"flowedit: error: unexpected {type(err).__name__}: {bounded(str(err))} (please report it)", file=sys.stderr
        )
        return 1
