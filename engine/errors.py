"""The one error type the command line turns into a one-line message and a non-zero exit."""


class PagemergeError(Exception):
    """A user-facing problem with an input or the environment.

    The message is one line that names the file (or knob) and the problem; the CLI prints it
    as ``pagemerge: <message>`` and exits with status 2.
    """


class InputError(PagemergeError):
    """Bad input: a truncated page file, a malformed list, an unknown option value."""


class KernelUnavailable(PagemergeError):
    """The live kernel cannot be used here (no root, no zram0/KSM, device busy)."""
