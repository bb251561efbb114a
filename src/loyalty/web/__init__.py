"""The pages people open in a browser: the member center (/m/) and the operations console (/ops/)."""
