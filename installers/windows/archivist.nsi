; Archivist for Windows: a per-user installer (no administrator rights needed).
;
;   makensis /DVERSION=0.1.0 /DBUNDLE=..\..\build\dist\Archivist installers\windows\archivist.nsi
;
; Silent install:    Archivist-Setup.exe /S [/D=C:\path\to\folder]   (/D last, unquoted)
; Silent uninstall:  "%LOCALAPPDATA%\Programs\Archivist\Uninstall.exe" /S
; The bundle itself (BUNDLE) is built on Windows by PyInstaller from installers\archivist.spec.

Unicode true
!ifndef VERSION
  !define VERSION "0.1.0"
!endif
!ifndef BUNDLE
  !error "Pass /DBUNDLE=<folder of the PyInstaller bundle>"
!endif
!ifndef OUTFILE
  !define OUTFILE "Archivist-${VERSION}-Setup.exe"
!endif

!define APP "Archivist"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP}"

Name "${APP} ${VERSION}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP}"
InstallDirRegKey HKCU "Software\${APP}" "InstallDir"
SetCompressor /SOLID lzma
!if /FileExists "archivist.ico"
  Icon "archivist.ico"
  UninstallIcon "archivist.ico"
!endif

!include "MUI2.nsh"
!define MUI_FINISHPAGE_RUN "$INSTDIR\archivist.exe"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"
!insertmacro MUI_LANGUAGE "SimpChinese"

Section "Archivist" SecApp
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${BUNDLE}\*.*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"
  WriteRegStr HKCU "Software\${APP}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "Archivist developers"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\archivist.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Start menu entry" SecStartMenu
  CreateDirectory "$SMPROGRAMS\${APP}"
  CreateShortCut "$SMPROGRAMS\${APP}\${APP}.lnk" "$INSTDIR\archivist.exe"
  CreateShortCut "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk" "$INSTDIR\Uninstall.exe"
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  CreateShortCut "$DESKTOP\${APP}.lnk" "$INSTDIR\archivist.exe"
SectionEnd

; Off by default: "Open with Archivist" for PDF files, for this user only.
Section /o "Offer Archivist for PDF files" SecAssociate
  WriteRegStr HKCU "Software\Classes\.pdf\OpenWithProgids" "Archivist.Document" ""
  WriteRegStr HKCU "Software\Classes\Archivist.Document" "" "Document (Archivist)"
  WriteRegStr HKCU "Software\Classes\Archivist.Document\shell\open\command" "" '"$INSTDIR\archivist.exe"'
SectionEnd

Section "Uninstall"
  ; The program goes; each user's knowledge base and settings (%LOCALAPPDATA%\Archivist) stay.
  RMDir /r "$INSTDIR"
  Delete "$SMPROGRAMS\${APP}\${APP}.lnk"
  Delete "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk"
  RMDir "$SMPROGRAMS\${APP}"
  Delete "$DESKTOP\${APP}.lnk"
  DeleteRegKey HKCU "Software\Classes\Archivist.Document"
  DeleteRegValue HKCU "Software\Classes\.pdf\OpenWithProgids" "Archivist.Document"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\${APP}"
SectionEnd
