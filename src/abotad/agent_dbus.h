/* agent_dbus.h - the hawkBit agent's installer over D-Bus (agent_installer.h):
 * abotad --installer=dbus runs unprivileged and lets the root service
 * (`abota service`, RAUC's de.pengutronix.rauc) install and report the
 * board, as rauc-hawkbit-updater does with RAUC.
 *
 *   install: InstallBundle(source, {transaction-id, tls-*, http-headers}),
 *            Progress forwarded, wait for Completed; a non-zero result is
 *            an error with LastError's text; the installed bank is the one
 *            whose installed.transaction is ours (GetBankHistory).
 *   board:   GetBankHistory (booted, primary, boot-status, bundle.version
 *            per bank), BootSlot, and GetFwuStatus on FWU boards.
 */
#ifndef ABOTAD_AGENT_DBUS_H
#define ABOTAD_AGENT_DBUS_H

#include "abota/agent_installer.h"
#include "abota/error.h"

/* bus: "system", "session" or a D-Bus address (borrowed). */
int agent_installer_dbus(const char *bus, struct agent_installer **out, struct abota_error *err);

#endif
