// Values that test/support/emulators-setup.ts provides to tests through `inject`.
declare module "vitest" {
  export interface ProvidedContext {
    emulators: { dynamodbEndpoint: string; awsEndpoint: string; region: string };
  }
}

// A module, so the block above augments "vitest" instead of replacing it.
export {};
