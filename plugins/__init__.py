"""Built-in service plugins, each registered through the same entry-point mechanism a third party uses."""
