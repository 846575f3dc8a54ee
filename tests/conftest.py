pytest_plugins = ["pytest_orthanc"]
