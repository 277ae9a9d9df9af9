"""Heat meters with a Modbus TCP module: register map as data in the site file."""
