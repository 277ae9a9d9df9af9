"""Tesla PowerPack battery over Modbus TCP."""
