/** Forgets everything the test isolate's Worker code remembers between requests. */
import { resetTeamTests } from "../../src/api/alerts";
import { resetKeyCache } from "../../src/auth/key-cache";
import { resetCredentials } from "../../src/pool/credentials";
import { resetSnapshots } from "../../src/pool/snapshots";

export function resetIsolateCaches(): void {
  resetKeyCache();
  resetSnapshots();
  resetCredentials();
  resetTeamTests();
}
