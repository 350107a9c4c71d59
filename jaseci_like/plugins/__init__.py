"""Plugin discovery and the hook specifications plugins implement."""
