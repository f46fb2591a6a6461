import { describe, expect, it } from "vitest";
import type { Resolver } from "../../core/ports.ts";
import { addressKind, CallbackRefused, callbackUrlProblem, resolveCallbackTarget } from "../../core/ssrf.ts";

const AWS = { allowLoopback: false };
const LOCAL = { allowLoopback: true };

describe("callbackUrlProblem", () => {
  it.each([
    "https://hooks.example.com/switchyard",
    "https://hooks.example.com:8443/a/b?c=d",
    "https://8.8.8.8/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://EXAMPLE.com./hook",
    "https://a.b.example.co.uk/",
    // A public IPv4 address, mapped into IPv6 or carried by NAT64 / 6to4: still public.
    "https://[::ffff:8.8.8.8]/",
    "https://[64:ff9b::808:808]/",
    "https://[2002:808:808::1]/",
  ])("accepts %s everywhere", (url) => {
    expect(callbackUrlProblem(url, AWS)).toBeUndefined();
    expect(callbackUrlProblem(url, LOCAL)).toBeUndefined();
  });

  it.each([
    ["http://hooks.example.com/", /must use https/],
    ["ftp://hooks.example.com/", /must use https/],
    ["file:///etc/passwd", /must use https/],
    ["gopher://hooks.example.com/", /must use https/],
    ["not a url", /not a valid URL/],
    ["https://user:secret@hooks.example.com/", /user name or password/],
    ["https://token@hooks.example.com/", /user name or password/],
  ])("refuses %s (scheme, form)", (url, reason) => {
    expect(callbackUrlProblem(url, AWS)).toMatch(reason);
    expect(callbackUrlProblem(url, LOCAL)).toMatch(reason);
  });

  it.each([
    "https://127.0.0.1/",
    "https://127.255.255.254:8080/",
    "https://localhost/",
    "https://LOCALHOST./",
    "https://api.localhost/",
    "https://[::1]/",
    "https://[0:0:0:0:0:0:0:1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    // Numeric tricks the URL parser turns into 127.0.0.1.
    "https://2130706433/",
    "https://0x7f.1/",
    "https://0x7f000001/",
    "https://017700000001/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://127.0.0.1./",
    "https://%31%32%37.0.0.1/",
    "https://\uff11\uff12\uff17.0.0.1/", // full-width digits
    "https://\uff2c\uff2f\uff23\uff21\uff2c\uff28\uff2f\uff33\uff34/", // full-width LOCALHOST
    "https://localhost%2e/",
  ])("refuses the loopback %s on AWS, allows it locally", (url) => {
    expect(callbackUrlProblem(url, AWS)).toMatch(/loopback/);
    expect(callbackUrlProblem(url, LOCAL)).toBeUndefined();
  });

  it("allows plain http only to a loopback host, and only locally", () => {
    expect(callbackUrlProblem("http://127.0.0.1:8080/hook", LOCAL)).toBeUndefined();
    expect(callbackUrlProblem("http://localhost:8080/hook", LOCAL)).toBeUndefined();
    expect(callbackUrlProblem("http://[::1]:8080/hook", LOCAL)).toBeUndefined();
    expect(callbackUrlProblem("http://2130706433:8080/hook", LOCAL)).toBeUndefined();
    expect(callbackUrlProblem("http://127.0.0.1:8080/hook", AWS)).toBe("must use https");
    expect(callbackUrlProblem("http://hooks.example.com/", LOCAL)).toMatch(/http only to a loopback host/);
    expect(callbackUrlProblem("http://10.0.0.1/", LOCAL)).toMatch(/https/);
  });

  it.each([
    ["https://10.0.0.1/", "private"],
    ["https://10.255.255.255/", "private"],
    ["https://172.16.0.1/", "private"],
    ["https://172.31.255.255/", "private"],
    ["https://192.168.1.1/", "private"],
    ["https://100.64.0.1/", "private"],
    ["https://100.127.255.255/", "private"],
    ["https://167772161/", "private"], // 10.0.0.1 in decimal
    ["https://0xa.0.0.1/", "private"],
    ["https://012.0.0.1/", "private"], // octal 10
    ["https://169.254.0.1/", "link-local"],
    ["https://169.254.169.254/latest/meta-data/", "metadata"],
    ["https://2852039166/", "metadata"], // 169.254.169.254 in decimal
    ["https://0xa9fea9fe/", "metadata"],
    ["https://169.254.170.2/v2/credentials", "metadata"],
    ["https://100.100.100.200/", "metadata"],
    ["https://[fd00:ec2::254]/", "metadata"],
    ["https://[::ffff:169.254.169.254]/", "metadata"],
    ["https://[::ffff:a9fe:a9fe]/", "metadata"],
    ["https://[0:0:0:0:0:ffff:10.0.0.1]/", "private"],
    ["https://[64:ff9b::a00:1]/", "private"], // NAT64 of 10.0.0.1
    ["https://[2002:a00:1::]/", "private"], // 6to4 of 10.0.0.1
    ["https://[2002:7f00:1::]/", "reserved"], // 6to4 of 127.0.0.1 does not reach this host's loopback
    ["https://[64:ff9b::7f00:1]/", "reserved"], // nor does NAT64 of it
    ["https://[fc00::1]/", "private"],
    ["https://[fd12:3456::1]/", "private"],
    ["https://[fe80::1]/", "link-local"],
    ["https://[febf::1]/", "link-local"],
    ["https://[fec0::1]/", "private"],
    ["https://0.0.0.0/", "unspecified"],
    ["https://0/", "unspecified"],
    ["https://0.1.2.3/", "unspecified"],
    ["https://[::]/", "unspecified"],
    ["https://224.0.0.1/", "multicast"],
    ["https://239.255.255.250/", "multicast"],
    ["https://[ff02::1]/", "multicast"],
    ["https://255.255.255.255/", "reserved"],
    ["https://240.0.0.1/", "reserved"],
    ["https://192.0.2.10/", "reserved"],
    ["https://198.18.0.1/", "reserved"],
    ["https://[::7f00:1]/", "reserved"], // IPv4-compatible, deprecated
    ["https://[2001:db8::1]/", "reserved"],
    ["https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "reserved"], // Teredo
  ])("refuses %s (%s)", (url, kind) => {
    const problem = callbackUrlProblem(url, AWS);
    expect(problem).toMatch(new RegExp(kind));
    if (kind !== "loopback") expect(callbackUrlProblem(url, LOCAL)).toBe(problem);
  });

  it.each([
    ["https://metadata.google.internal/computeMetadata/v1/", /metadata/],
    ["https://metadata.google.internal./", /metadata/],
    ["https://metadata/", /metadata/],
    ["https://instance-data/", /metadata/],
    ["https://ip-10-0-0-1.ec2.internal/", /private name/],
    ["https://printer.local/", /private name/],
    ["https://router.home.arpa/", /private name/],
    ["https://intranet/", /private name|fully qualified/],
    ["https://jenkins/", /fully qualified/],
  ])("refuses the name in %s everywhere", (url, reason) => {
    expect(callbackUrlProblem(url, AWS)).toMatch(reason);
    expect(callbackUrlProblem(url, LOCAL)).toMatch(reason);
  });

  it("judges the host the URL parser sees, not what looks like one", () => {
    // The host is evil.example.com in each; the first carries credentials and is refused for that.
    expect(callbackUrlProblem("https://127.0.0.1:443@evil.example.com/", AWS)).toMatch(/user name/);
    expect(callbackUrlProblem("https://evil.example.com#@127.0.0.1/", AWS)).toBeUndefined();
    // A backslash is a path separator in http(s) URLs: the host is evil.example.com.
    expect(callbackUrlProblem("https://evil.example.com\\@127.0.0.1/", AWS)).toBeUndefined();
  });
});

describe("addressKind", () => {
  it("tells addresses from names", () => {
    expect(addressKind("example.com")).toBeUndefined();
    expect(addressKind("8.8.8.8")).toBe("public");
    expect(addressKind("[::1]")).toBe("loopback");
    expect(addressKind("::ffff:127.0.0.1")).toBe("loopback");
    expect(addressKind("172.15.255.255")).toBe("public");
    expect(addressKind("172.32.0.0")).toBe("public");
    expect(addressKind("100.63.255.255")).toBe("public");
    expect(addressKind("100.128.0.0")).toBe("public");
    expect(addressKind("2606:4700::1111")).toBe("public");
  });
});

describe("resolveCallbackTarget", () => {
  const fakeDns =
    (answers: Record<string, string[]>): Resolver =>
    async (host) =>
      (answers[host] ?? []).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

  it("returns every vetted address of a public name", async () => {
    const target = await resolveCallbackTarget(
      "https://hooks.example.com/x",
      AWS,
      fakeDns({ "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] }),
    );
    expect(target.hostname).toBe("hooks.example.com");
    expect(target.addresses.map((a) => a.address)).toEqual([
      "93.184.216.34",
      "2606:2800:220:1:248:1893:25c8:1946",
    ]);
  });

  it("refuses a name when any of its addresses is forbidden (DNS rebinding)", async () => {
    const dns = fakeDns({
      "rebind.example.com": ["93.184.216.34", "169.254.169.254"],
      "inner.example.com": ["10.1.2.3"],
      "mapped.example.com": ["::ffff:192.168.0.1"],
      "loop.example.com": ["127.0.0.1"],
    });
    await expect(resolveCallbackTarget("https://rebind.example.com/", AWS, dns)).rejects.toThrow(
      /169\.254\.169\.254, a metadata address/,
    );
    await expect(resolveCallbackTarget("https://inner.example.com/", LOCAL, dns)).rejects.toThrow(
      CallbackRefused,
    );
    await expect(resolveCallbackTarget("https://mapped.example.com/", LOCAL, dns)).rejects.toThrow(/private/);
    await expect(resolveCallbackTarget("https://loop.example.com/", AWS, dns)).rejects.toThrow(/loopback/);
    await expect(resolveCallbackTarget("https://loop.example.com/", LOCAL, dns)).resolves.toMatchObject({
      addresses: [{ address: "127.0.0.1" }],
    });
  });

  it("checks the URL itself first and does not resolve a refused one", async () => {
    let asked = 0;
    const dns: Resolver = async () => {
      asked++;
      return [{ address: "93.184.216.34", family: 4 }];
    };
    await expect(resolveCallbackTarget("http://hooks.example.com/", AWS, dns)).rejects.toThrow(/https/);
    await expect(resolveCallbackTarget("https://10.0.0.1/", AWS, dns)).rejects.toThrow(/private/);
    expect(asked).toBe(0);
  });

  it("uses an address literal as is, without DNS", async () => {
    const dns: Resolver = async () => {
      throw new Error("no DNS expected");
    };
    await expect(resolveCallbackTarget("https://[2606:4700::1111]:8443/", AWS, dns)).resolves.toMatchObject({
      hostname: "2606:4700::1111",
      addresses: [{ address: "2606:4700::1111", family: 6 }],
    });
  });

  it("sends plain http to loopback only, even when a loopback name resolves elsewhere", async () => {
    const dns = fakeDns({ localhost: ["127.0.0.1", "93.184.216.34"] });
    await expect(resolveCallbackTarget("http://localhost:9/", LOCAL, dns)).rejects.toThrow(/not loopback/);
  });

  it("lets a lookup failure through as an ordinary (retryable) error", async () => {
    const dns: Resolver = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND nowhere.example.com"), { code: "ENOTFOUND" });
    };
    const err = await resolveCallbackTarget("https://nowhere.example.com/", AWS, dns).catch((e) => e);
    expect(err).not.toBeInstanceOf(CallbackRefused);
    expect(String(err)).toMatch(/ENOTFOUND/);
    await expect(resolveCallbackTarget("https://empty.example.com/", AWS, fakeDns({}))).rejects.toThrow(
      /did not resolve/,
    );
  });
});
