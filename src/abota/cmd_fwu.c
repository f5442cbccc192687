/* placeholder, replaced by the FWU implementation in this session */
#include <stdio.h>
#include "cli.h"
int cmd_fwu(struct cli_globals *g, int argc, char **argv) { (void)g; (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
