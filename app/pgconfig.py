"""pyqtgraph, configured once for the whole application (row-major images, light plots).
Modules import `pg` from here so the options are always in force before the first item is made."""

import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")

__all__ = ["pg"]
