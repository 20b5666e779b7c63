// Creates a blob container (if it does not exist yet) with the Azure SDK.
// Usage: node create-container.mjs <connection string> <container name>
// Exits 0 on success; on failure prints the reason to stderr and exits non-zero.
import { BlobServiceClient } from "@azure/storage-blob";

const [connectionString, name] = process.argv.slice(2);
if (!connectionString || !name || process.argv.length !== 4) {
  console.error("usage: node create-container.mjs <connection string> <container name>");
  process.exit(2);
}

try {
  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(name);
  const response = await container.createIfNotExists();
  console.log(
    response.succeeded
      ? `created container "${name}" at ${container.url}`
      : `container "${name}" already exists at ${container.url}`,
  );
} catch (error) {
  const status = error?.statusCode ? ` (HTTP ${error.statusCode}${error.code ? `, ${error.code}` : ""})` : "";
  console.error(`failed to create container "${name}"${status}: ${error?.message ?? error}`);
  process.exit(1);
}
