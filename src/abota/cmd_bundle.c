/* placeholder, replaced by the bundle implementation in this session */
#include <stdio.h>
#include "cli.h"
int cmd_bundle(struct cli_globals *g, int argc, char **argv) { (void)g; (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
int cmd_info(struct cli_globals *g, int argc, char **argv) { (void)g; (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
int cmd_extract(struct cli_globals *g, int argc, char **argv) { (void)g; (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
int cmd_resign(struct cli_globals *g, int argc, char **argv) { (void)g; (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
