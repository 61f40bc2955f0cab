"""The default plugins, one module each, named as upstream names them (framework/plugins/names)."""
