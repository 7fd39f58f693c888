"""The command-line tools' exit codes: 0 success; 1 an error, or some files could not be
indexed; 2 bad usage; 130 interrupted (Ctrl+C) after a clean stop."""

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
