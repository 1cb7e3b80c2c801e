"""Limits on what is read, shared by the readers and the front ends that show them (the CLI's
and the app's defaults), without importing the readers themselves."""

#: Files larger than this are skipped with a reason (``--max-file-size`` changes it).
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
