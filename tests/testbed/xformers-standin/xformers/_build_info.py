BUILD_INFO = "{}"
