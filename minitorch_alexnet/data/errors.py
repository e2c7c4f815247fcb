"""The two exceptions of the data pipeline.

``DataError`` is for problems with a whole data set (a missing directory, a file in the wrong
format, labels out of range): the run cannot go on, and the message says what was expected
and where we looked.

``BadImageError`` is for one image that cannot be decoded (truncated, empty, not an image,
absurdly large). The loader skips such images, counts them, and only fails when too many are
bad; see ``loader.DataLoader``.
"""


class DataError(ValueError):
    """A data set is missing, empty, or malformed. The message names the path and the layout."""


class BadImageError(DataError):
    """One image file could not be decoded.

    Attributes:
        path: the file that failed.
        reason: a short human-readable reason ("truncated file", "not an image", ...).
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"cannot read image {self.path}: {self.reason}")

    def __reduce__(self):
        # Exceptions are re-created from ``args`` when pickled (e.g. sent between processes);
        # ours takes (path, reason), not the formatted message.
        return (type(self), (self.path, self.reason))
